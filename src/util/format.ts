// Number formatting shared by the CLI, the reports and the pages (no Node import: the pages bundle it).

/** How the values with no digits read: plain ASCII in files and terminals, typographic on the pages. */
export interface NonFiniteText {
  nan: string;
  inf: string;
  negInf: string;
}

/** eval.csv, the CLI and the reports: what a CSV parser and `Number()` read back. */
export const PLAIN: NonFiniteText = { nan: 'nan', inf: 'inf', negInf: '-inf' };
/** The pages. */
export const TYPESET: NonFiniteText = { nan: '–', inf: '∞', negInf: '-∞' };

function nonFinite(x: number, text: NonFiniteText): string {
  return Number.isNaN(x) ? text.nan : x > 0 ? text.inf : text.negInf;
}

/** Fixed decimals (scores: PSNR 2, SSIM 4); infinities (PSNR of identical images) and NaN as `text` says. */
export function fmtNum(x: number, digits: number, text: NonFiniteText = PLAIN): string {
  return Number.isFinite(x) ? x.toFixed(digits) : nonFinite(x, text);
}

/**
 * `digits` significant digits, for values whose scale is not known in advance (losses, learning
 * rates): "0.6931", "12.35", "3.85e-5". Below 0.001 in exponent form, since a run of leading zeros hides
 * the scale, without trailing zeros ("2e-4", as one types a rate); 100 and above with one decimal, so a
 * large loss never turns into an exponent.
 */
export function fmtSig(x: number, digits: number, text: NonFiniteText = PLAIN): string {
  if (!Number.isFinite(x)) return nonFinite(x, text);
  if (Math.abs(x) >= 100) return x.toFixed(1);
  if (x !== 0 && Math.abs(x) < 1e-3) return x.toExponential(digits - 1).replace(/\.?0+e/, 'e');
  return x.toPrecision(digits);
}

/** "42.1 s", "12 min 05 s", "3 h 07 min". */
export function fmtDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '–';
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const s = Math.round(seconds);
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  const m = Math.round(seconds / 60);
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`;
}
