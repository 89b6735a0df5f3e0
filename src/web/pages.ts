// The HTML shells of the four pages: each loads its script from /assets/, which builds the page from
// the API. No data goes into the HTML, so the policy can forbid every inline script and style.
import type { ServerResponse } from 'node:http';
import { sendBody } from './respond.js';

export type Page = 'index' | 'run' | 'try' | 'train';

/** The pages' policy: only this server's scripts (and WebAssembly compiled from its .wasm files). */
const PAGE_CSP = [
  "default-src 'self'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "style-src 'self'",
  "img-src 'self' data: blob:",
  "connect-src 'self'",
  "frame-src 'self'",
  "worker-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'self'",
].join('; ');

const TITLES: Record<Page, string> = {
  index: 'pix2pix runs',
  run: 'pix2pix runs',
  try: 'pix2pix: try it',
  train: 'pix2pix: train',
};

function pageHtml(page: Page): string {
  const script = page === 'try' || page === 'train' ? page : 'dashboard';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${TITLES[page]}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/assets/style.css">
<script type="module" src="/assets/${script}.js"></script>
</head>
<body data-page="${page}">
<header class="top"><a class="brand" href="/">pix2pix</a><nav><a href="/">runs</a><a href="/try">try it</a><a href="/train">train</a></nav></header>
<main id="app"><p class="muted">loading…</p><noscript>This page needs JavaScript.</noscript></main>
</body>
</html>
`;
}

export function sendPage(res: ServerResponse, page: Page): void {
  sendBody(res, 200, 'text/html; charset=utf-8', pageHtml(page), {
    'Cache-Control': 'no-cache',
    'Content-Security-Policy': PAGE_CSP,
    'X-Frame-Options': 'SAMEORIGIN',
  });
}
