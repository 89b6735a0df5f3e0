/// <reference lib="dom" />
// Small DOM helpers for the browser pages. Text always goes in as text nodes (never innerHTML), so
// folder names and config values from disk cannot inject markup.
import * as format from '../../util/format.js';

type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | undefined | null | ((ev: Event) => void)>;

function apply(el: Element, attrs: Attrs | undefined, children: Child[]): void {
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (typeof v === 'function') el.addEventListener(k.replace(/^on/, ''), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === 'object' ? c : String(c));
  }
}

/** An HTML element with attributes (`onclick` etc. become listeners) and children. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs?: Attrs,
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  apply(el, attrs, children);
  return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

/** An SVG element. */
export function s<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attrs?: Attrs,
  ...children: Child[]
): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG_NS, tag);
  apply(el, attrs, children);
  return el;
}

/** Replaces the children of `el`. */
export function fill(el: Element, ...children: Child[]): void {
  el.replaceChildren();
  apply(el, undefined, children);
}

export async function getJson<T>(url: string): Promise<T> {
  const r = await fetch(url, { cache: 'no-store' });
  if (!r.ok) throw new Error((await r.text()).trim() || `${r.status} ${r.statusText}`);
  return (await r.json()) as T;
}

/** A JSON number that may be 'Infinity'/'NaN' as a string (see types.ts). */
export const num = (v: number | string | undefined | null): number =>
  v === undefined || v === null ? Number.NaN : typeof v === 'number' ? v : Number(v);

/** Fixed decimals, as the CLI prints scores. */
export const fmt = (v: number | string | undefined | null, digits: number): string =>
  format.fmtNum(num(v), digits, format.TYPESET);

/** Significant digits, as the CLI prints losses: a decayed learning rate reads 3.85e-5. */
export const fmtSig = (v: number | string | undefined | null, digits: number): string =>
  format.fmtSig(num(v), digits, format.TYPESET);

/** '3 min ago' style age of an ISO time. */
export function ago(iso: string | undefined): string {
  if (!iso) return '–';
  const s = (Date.now() - Date.parse(iso)) / 1000;
  if (!Number.isFinite(s)) return '–';
  if (s < 5) return 'just now';
  if (s < 90) return `${Math.round(s)} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  if (s < 129600) return `${Math.round(s / 3600)} h ago`;
  return new Date(iso).toLocaleDateString();
}

export const runUrl = (id: string) => `/run?id=${encodeURIComponent(id)}`;
export const tryUrl = (id: string, epoch?: number) =>
  `/try?run=${encodeURIComponent(id)}${epoch !== undefined ? `&epoch=${epoch}` : ''}`;

export function showError(where: Element, e: unknown): void {
  where.append(h('p', { class: 'error' }, String((e as Error)?.message ?? e)));
}
