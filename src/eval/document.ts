// A report as a list of blocks (headings, paragraphs, tables, figures...), written once and rendered to
// HTML and to Markdown, so the two files of `compare` cannot drift apart: a section added to one is
// in the other. The HTML is self-contained (the caller inlines images); the Markdown links to files.

/** A table column; numeric columns are right-aligned (tabular figures in HTML, `---:` in Markdown). */
export interface Column {
  title: string;
  numeric?: boolean;
}

/** A term and its value in a definition list: plain text, text whose line breaks count, or code. */
export interface Fact {
  term: string;
  text: string;
  as: 'text' | 'lines' | 'code';
}

/**
 * A figure's image: `file` is its path relative to the document (Markdown links it); HTML inlines
 * `svg`, else shows `dataUri`, else says the file was not found.
 */
export interface Image {
  file: string;
  svg?: string;
  dataUri?: string;
}

export type Block =
  | { kind: 'heading'; level: 1 | 2 | 3; text: string }
  | { kind: 'paragraph'; text: string }
  /** A highlighted paragraph starting with a bold `lead`. */
  | { kind: 'note'; lead: string; text: string }
  | { kind: 'facts'; facts: Fact[] }
  | { kind: 'table'; columns: Column[]; rows: string[][] }
  | { kind: 'figure'; image: Image; alt: string; caption: string }
  /** A collapsible part in HTML; a level-3 heading over `body` in Markdown. */
  | { kind: 'details'; summary: string; open: boolean; body: Block[] };

export function escapeHtml(s: string): string {
  return s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/** Inline markdown text: escapes the characters that markdown or HTML would read as markup. */
export function escapeMd(s: string): string {
  return s.replace(/[\\`*_[\]<>|#]/g, '\\$&').replace(/\r?\n/g, ' ');
}

/** A relative path as a markdown link target: forward slashes, unusual characters percent-encoded. */
function mdUrl(path: string): string {
  return Array.from(path.replace(/\\/g, '/'))
    .map((c) => (/[A-Za-z0-9._~\-/=+,@]/.test(c) ? c : encodeURIComponent(c)))
    .join('');
}

/** A fenced code block whose fence is longer than any backtick run in `text`. */
function mdFence(text: string): string {
  const longest = Math.max(0, ...(text.match(/`+/g) ?? []).map((m) => m.length));
  const fence = '`'.repeat(Math.max(3, longest + 1));
  return `${fence}\n${text}\n${fence}`;
}

/** Paragraph text that keeps its line breaks. */
const mdLines = (s: string): string =>
  s
    .split(/\r?\n/)
    .map((l) => escapeMd(l))
    .join('  \n');

// ---------------------------------------------------------------------------------------------------------
// HTML

const CSS = `
body { font-family: system-ui, -apple-system, "Segoe UI", "DejaVu Sans", Arial, sans-serif; color: #222;
  background: #fff; margin: 0; line-height: 1.45; }
main { max-width: 1100px; margin: 0 auto; padding: 1.5rem; }
h1 { font-size: 1.7rem; margin-top: 0; }
h2 { font-size: 1.3rem; border-bottom: 1px solid #ddd; padding-bottom: .2rem; margin-top: 2rem; }
h3 { font-size: 1.05rem; }
table { border-collapse: collapse; margin: .5rem 0 1rem; font-size: .92rem; }
th, td { border: 1px solid #ccc; padding: .3rem .6rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
pre { background: #f6f6f6; padding: .6rem .8rem; overflow-x: auto; white-space: pre-wrap; word-break: break-all; }
.text { white-space: pre-wrap; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .3rem 1rem; }
dt { font-weight: 600; }
dd { margin: 0; }
figure { margin: 1rem 0 1.5rem; }
figure svg, figure img { max-width: 100%; height: auto; display: block; }
figure img { image-rendering: pixelated; border: 1px solid #ddd; }
figcaption { color: #555; font-size: .9rem; margin-top: .3rem; }
.note { background: #fff8e1; border-left: 4px solid #f0b400; padding: .6rem .9rem; }
.missing { color: #a00; }
`;

function htmlFact(f: Fact): string {
  const h = escapeHtml;
  if (f.as === 'code') return `<dt>${h(f.term)}</dt><dd><pre><code>${h(f.text)}</code></pre></dd>`;
  return `<dt>${h(f.term)}</dt><dd${f.as === 'lines' ? ' class="text"' : ''}>${h(f.text)}</dd>`;
}

function htmlImage(image: Image, alt: string): string {
  if (image.svg) return image.svg;
  if (image.dataUri) return `<img src="${image.dataUri}" alt="${escapeHtml(alt)}">`;
  return `<p class="missing">Image not found: ${escapeHtml(image.file)}</p>`;
}

function htmlBlock(b: Block): string {
  const h = escapeHtml;
  switch (b.kind) {
    case 'heading':
      return `<h${b.level}>${h(b.text)}</h${b.level}>`;
    case 'paragraph':
      return `<p>${h(b.text)}</p>`;
    case 'note':
      return `<p class="note"><strong>${h(b.lead)}</strong> ${h(b.text)}</p>`;
    case 'facts':
      return ['<dl>', ...b.facts.map(htmlFact), '</dl>'].join('\n');
    case 'table': {
      const head = `<tr>${b.columns.map((c) => `<th>${h(c.title)}</th>`).join('')}</tr>`;
      const cell = (text: string, i: number) =>
        `${b.columns[i]?.numeric ? '<td class="num">' : '<td>'}${h(text)}</td>`;
      const body = b.rows.map((row) => `<tr>${row.map(cell).join('')}</tr>`).join('\n');
      return `<table>\n<thead>${head}</thead>\n<tbody>\n${body}\n</tbody>\n</table>`;
    }
    case 'figure':
      return `<figure>${htmlImage(b.image, b.alt)}<figcaption>${h(b.caption)}</figcaption></figure>`;
    case 'details':
      return [
        `<details${b.open ? ' open' : ''}><summary>${h(b.summary)}</summary>`,
        ...b.body.map(htmlBlock),
        '</details>',
      ].join('\n');
  }
}

/** A self-contained page: `title` in its head, the blocks in its body, and the stylesheet inline. */
export function renderHtml(title: string, blocks: Block[]): string {
  return [
    '<!doctype html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeHtml(title)}</title>`,
    `<style>${CSS}</style>`,
    '</head>',
    '<body>',
    '<main>',
    ...blocks.map(htmlBlock),
    '</main>',
    '</body>',
    '</html>',
    '',
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------------------
// Markdown

function mdFact(f: Fact): string {
  if (f.as === 'code') return `**${escapeMd(f.term)}:**\n\n${mdFence(f.text)}`;
  if (f.as === 'lines') return `**${escapeMd(f.term)}:**  \n${mdLines(f.text)}`;
  return `**${escapeMd(f.term)}:** ${escapeMd(f.text)}`;
}

function mdBlock(b: Block): string {
  switch (b.kind) {
    case 'heading':
      return `${'#'.repeat(b.level)} ${escapeMd(b.text)}`;
    case 'paragraph':
      return escapeMd(b.text);
    case 'note':
      return `> **${escapeMd(b.lead)}** ${escapeMd(b.text)}`;
    case 'facts':
      return b.facts.map(mdFact).join('\n\n');
    case 'table': {
      const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
      return [
        line(b.columns.map((c) => escapeMd(c.title))),
        line(b.columns.map((c) => (c.numeric ? '---:' : '---'))),
        ...b.rows.map((row) => line(row.map(escapeMd))),
      ].join('\n');
    }
    case 'figure': {
      const parts = [`![${escapeMd(b.alt)}](${mdUrl(b.image.file)})`];
      // A plot's PNG is written beside its SVG; only a missing grid image has neither.
      if (!b.image.svg && !b.image.dataUri)
        parts.push(`(image not found: \`${b.image.file.replace(/`/g, "'")}\`)`);
      parts.push(`*${escapeMd(b.caption)}*`);
      return parts.join('\n\n');
    }
    case 'details':
      return [mdBlock({ kind: 'heading', level: 3, text: b.summary }), ...b.body.map(mdBlock)].join('\n\n');
  }
}

/** Markdown: one blank line between blocks, a newline at the end. */
export function renderMarkdown(blocks: Block[]): string {
  return `${blocks.map(mdBlock).join('\n\n')}\n`;
}
