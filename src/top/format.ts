/**
 * Text for the live view: numbers in few characters, sparklines, and cells cut or padded to a
 * width. Every character the view prints is one terminal column wide: text from the network
 * (paths, route names) has its control characters replaced before it can reach the terminal.
 */

export const ELLIPSIS = '…';
const BARS = '▁▂▃▄▅▆▇█';

/** C0, DEL and C1 controls (an escape sequence in a path must not drive the terminal). */
export function clean(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
}

/** Cut to `width` (an ellipsis marks the cut) and pad. */
export function fit(s: string, width: number, align: 'left' | 'right' = 'left'): string {
  if (width <= 0) return '';
  if (s.length > width) return width === 1 ? ELLIPSIS : s.slice(0, width - 1) + ELLIPSIS;
  return align === 'left' ? s.padEnd(width) : s.padStart(width);
}

/** Seconds as milliseconds: 0.04, 4.21, 42.1, 421, then seconds: 12.3s. */
export function ms(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '-';
  const v = seconds * 1000;
  if (v < 10) return v.toFixed(2);
  if (v < 100) return v.toFixed(1);
  if (v < 10_000) return v.toFixed(0);
  return `${seconds.toFixed(1)}s`;
}

/** A rate per second: 0, 0.4, 12.5, 125, 1.2k, 12k. */
export function perSecond(v: number): string {
  if (!Number.isFinite(v) || v <= 0) return '0';
  if (v < 10) return v.toFixed(1);
  if (v < 1000) return v.toFixed(0);
  if (v < 10_000) return `${(v / 1000).toFixed(1)}k`;
  return `${(v / 1000).toFixed(0)}k`;
}

/** A ratio as a percentage: -, 0%, 0.4%, 17%. */
export function percent(ratio: number | null | undefined): string {
  if (ratio === null || ratio === undefined || !Number.isFinite(ratio)) return '-';
  const p = ratio * 100;
  if (p === 0) return '0%';
  if (p < 10) return `${p.toFixed(1)}%`;
  return `${p.toFixed(0)}%`;
}

/** A count, exact (the figures a script compares). */
export function count(n: number): string {
  return String(Math.round(n));
}

/** Memory as top shows it: 120M. */
export function mebibytes(bytes: number): string {
  return `${Math.round(bytes / 1048576)}M`;
}

/** How long ago: 4s, 12m, 3h. */
export function age(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 100) return `${s}s`;
  if (s < 6000) return `${Math.round(s / 60)}m`;
  return `${Math.round(s / 3600)}h`;
}

/**
 * The last `width` values as bars scaled to their maximum; a zero or a missing second is a blank,
 * the least non-zero value at least the lowest bar. Left-padded when fewer values than width.
 */
export function sparkline(values: readonly (number | null)[], width: number): string {
  const shown = values.slice(-width);
  let max = 0;
  for (const v of shown) if (v !== null && v > max) max = v;
  let out = ' '.repeat(Math.max(0, width - shown.length));
  for (const v of shown) {
    if (v === null || !(v > 0) || max === 0) out += ' ';
    else out += BARS[Math.min(BARS.length - 1, Math.max(0, Math.ceil((v / max) * BARS.length) - 1))];
  }
  return out;
}

/** HH:MM:SS, local time. */
export function clock(timeMs: number): string {
  const d = new Date(timeMs);
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':');
}
