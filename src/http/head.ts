/**
 * One complete HTTP/1.x head (start line + header lines) -> the fields exchanges carry.
 * Only selected headers are kept, bounded in count and length: heads are untrusted input
 * from every client on the internet, and outputs must stay small.
 *
 * This runs for every request and response Kong moves: lines are found with indexOf, names
 * matched in place, and only the start line's parts and kept values become (sliced) strings.
 */

export const REQUEST_HEADERS: ReadonlySet<string> = new Set([
  'host',
  'user-agent',
  'traceparent',
  'tracestate',
  'b3',
  'x-b3-traceid',
  'x-b3-spanid',
  'x-b3-parentspanid',
  'x-b3-sampled',
  'x-b3-flags',
  'x-request-id',
  'x-kong-request-id',
  'content-type',
  'content-length',
  'transfer-encoding',
  'connection',
  'x-forwarded-for',
]);

export const RESPONSE_HEADERS: ReadonlySet<string> = new Set([
  'via',
  'server',
  'x-kong-proxy-latency',
  'x-kong-upstream-latency',
  'x-kong-response-latency',
  'content-type',
  'content-length',
  'transfer-encoding',
  'connection',
  'upgrade',
]);

export const MAX_KEPT_HEADERS = 24;
export const MAX_HEADER_VALUE = 512;

/** How the body after a head is delimited. */
export type BodyFraming =
  { kind: 'none' } | { kind: 'length'; length: number } | { kind: 'chunked' } | { kind: 'close' };

export interface RequestHead {
  method: string;
  target: string;
  path: string;
  query?: string;
  httpVersion: string;
  headers: Record<string, string>;
  headSize: number;
  framing: BodyFraming;
}

export interface ResponseHead {
  statusCode: number;
  httpVersion: string;
  headers: Record<string, string>;
  headSize: number;
  /** framing before the request method is known (HEAD requests have no body) */
  framing: BodyFraming;
}

export type HeadResult<T> = T | { error: string };

/** True when `bytes` can be the beginning of a request line: lets garbage be refused early. */
export function couldBeRequestStart(bytes: Buffer, start: number, end: number): boolean {
  let i = start;
  for (; i < end; i++) {
    const c = bytes[i];
    if (c === 0x20) return i > start; // a method then a space
    if (!((c >= 0x41 && c <= 0x5a) || c === 0x2d || c === 0x5f)) return false;
    if (i - start > 20) return false;
  }
  return true;
}

const HTTP_PREFIX = Buffer.from('HTTP/1.', 'latin1');

/** True when `bytes` can be the beginning of a status line. */
export function couldBeResponseStart(bytes: Buffer, start: number, end: number): boolean {
  const n = Math.min(end - start, HTTP_PREFIX.length);
  for (let i = 0; i < n; i++) if (bytes[start + i] !== HTTP_PREFIX[i]) return false;
  return true;
}

/** RFC 9110 tchar, by character code. */
const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") {
  TCHAR[c.charCodeAt(0)] = 1;
}

const CONTENT_LENGTH = 'content-length';
const TRANSFER_ENCODING = 'transfer-encoding';

interface NameEntry {
  /** lower-case name: the key in `headers` */
  name: string;
  hash: number;
  /** bit of this name in a head's "seen" mask */
  bit: number;
  kept: boolean;
}

/**
 * Header names worth a look, by the low bits of their hash: a line's name is hashed while its
 * characters are checked anyway, and only a name whose hash matches is compared in full.
 */
type NameTable = (NameEntry[] | undefined)[];
const TABLE_MASK = 255;

/** One step of the case-folding hash of a header name (for token characters, | 0x20 folds case). */
function hashStep(h: number, c: number): number {
  return (Math.imul(h, 31) + (c | 0x20)) | 0;
}

function nameTable(keep: ReadonlySet<string>): NameTable {
  const table: NameTable = [];
  let bit = 1;
  for (const name of new Set([...keep, CONTENT_LENGTH, TRANSFER_ENCODING])) {
    let hash = 0;
    for (let i = 0; i < name.length; i++) hash = hashStep(hash, name.charCodeAt(i));
    (table[hash & TABLE_MASK] ??= []).push({ name, hash, bit, kept: keep.has(name) });
    bit *= 2;
  }
  return table;
}

const REQUEST_NAMES = nameTable(REQUEST_HEADERS);
const RESPONSE_NAMES = nameTable(RESPONSE_HEADERS);

/** The entry for text[from, to) (token characters only, hashing to `hash`), or undefined. */
function lookupName(table: NameTable, hash: number, text: string, from: number, to: number): NameEntry | undefined {
  const bucket = table[hash & TABLE_MASK];
  if (bucket === undefined) return undefined;
  for (let k = 0; k < bucket.length; k++) {
    const entry = bucket[k];
    const want = entry.name;
    if (entry.hash !== hash || want.length !== to - from) continue;
    let i = 0;
    // Wanted names hold only a-z, 0-9 and '-': among token characters, OR 0x20 folds case and
    // cannot turn any other character into one of those.
    while (i < want.length && (text.charCodeAt(from + i) | 0x20) === want.charCodeAt(i)) i++;
    if (i === want.length) return entry;
  }
  return undefined;
}

/**
 * What scanning a head's lines found. One instance, reused: parsing never nests, and a head
 * is parsed for every message Kong moves.
 */
class Scan {
  /** end of the start line (exclusive) */
  startLineEnd = 0;
  headers: Record<string, string> = {};
  contentLength: string | undefined;
  /** the last Transfer-Encoding line's value: only its last coding decides the framing */
  transferEncoding: string | undefined;
}

const scan = new Scan();

function bound(value: string): string {
  return value.length > MAX_HEADER_VALUE ? value.slice(0, MAX_HEADER_VALUE) : value;
}

/**
 * Fills `scan` from the lines of `text`, cut as String.prototype.split would cut them: on CRLF,
 * or on LF when the head holds no CRLF at all. Returns an error code or undefined.
 */
function scanLines(text: string, table: NameTable): string | undefined {
  const n = text.length;
  // Heads end lines with CRLF in practice; bare LF is tolerated, as nginx does.
  const firstLf = text.indexOf('\n');
  const crlf =
    firstLf > 0 && text.charCodeAt(firstLf - 1) === 0x0d ? true : firstLf >= 0 && text.indexOf('\r\n', firstLf) >= 0;
  const step = crlf ? 2 : 1;
  const headers: Record<string, string> = {};
  scan.headers = headers;
  scan.contentLength = undefined;
  scan.transferEncoding = undefined;
  let kept = 0;
  let seen = 0;
  let last: string | undefined;
  let le = crlf ? text.indexOf('\r\n') : firstLf;
  if (le < 0) le = n;
  scan.startLineEnd = !crlf && le > 0 && text.charCodeAt(le - 1) === 0x0d ? le - 1 : le;
  while (le < n) {
    const ls = le + step;
    le = crlf ? text.indexOf('\r\n', ls) : text.indexOf('\n', ls);
    if (le < 0) le = n;
    // Without CRLF anywhere in the head, only the last line can end in a CR.
    const stop = !crlf && le > ls && text.charCodeAt(le - 1) === 0x0d ? le - 1 : le;
    if (stop === ls) continue;
    const c0 = text.charCodeAt(ls);
    if (c0 === 0x20 || c0 === 0x09) {
      // obsolete line folding: continues the previous header's value
      if (last !== undefined && headers[last] !== undefined) {
        headers[last] = bound(`${headers[last]} ${text.slice(ls, stop).trim()}`);
      }
      continue;
    }
    const colon = text.indexOf(':', ls);
    if (colon <= ls || colon >= stop) return 'bad_header_line';
    let hash = 0;
    for (let i = ls; i < colon; i++) {
      const c = text.charCodeAt(i);
      if (TCHAR[c] !== 1) return 'bad_header_name';
      hash = hashStep(hash, c);
    }
    last = undefined;
    const entry = lookupName(table, hash, text, ls, colon);
    if (entry === undefined) continue;
    const name = entry.name;
    const value = text.slice(colon + 1, stop).trim();
    if (name === CONTENT_LENGTH) {
      if (scan.contentLength !== undefined && scan.contentLength !== value) return 'bad_content_length';
      scan.contentLength = value;
    } else if (name === TRANSFER_ENCODING) {
      scan.transferEncoding = value;
    }
    if (!entry.kept) continue;
    last = name;
    if ((seen & entry.bit) !== 0) {
      headers[name] = bound(`${headers[name]}, ${value}`);
    } else if (kept < MAX_KEPT_HEADERS) {
      seen |= entry.bit;
      headers[name] = bound(value);
      kept++;
    }
  }
  return undefined;
}

/** The last coding of a Transfer-Encoding value is chunked. */
function isChunked(te: string): boolean {
  const comma = te.lastIndexOf(',');
  return (comma < 0 ? te : te.slice(comma + 1)).trim().toLowerCase() === 'chunked';
}

/** Content-Length as a safe integer (1 to 15 digits), or undefined when it is not one. */
function parseLength(value: string): number | undefined {
  const n = value.length;
  if (n === 0 || n > 15) return undefined;
  for (let i = 0; i < n; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return undefined;
  }
  return Number(value);
}

const NO_BODY: BodyFraming = { kind: 'none' };
const CHUNKED: BodyFraming = { kind: 'chunked' };
const UNTIL_CLOSE: BodyFraming = { kind: 'close' };

function isMethodChar(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || c === 0x5f || c === 0x2d;
}

/** The method, the most common ones as constants rather than fresh strings. */
function methodOf(text: string, end: number): string {
  if (end === 3 && text.charCodeAt(0) === 0x47 && text.charCodeAt(1) === 0x45 && text.charCodeAt(2) === 0x54) {
    return 'GET';
  }
  if (end === 4 && text.startsWith('POST')) return 'POST';
  return text.slice(0, end);
}

/**
 * `text` is the head as latin1, from the start line through the blank line. The request line is
 * METHOD SP request-target SP HTTP/1.x: exactly two spaces, a method of [A-Z][A-Z_-]{0,19}.
 */
export function parseRequestHead(text: string, headSize: number): HeadResult<RequestHead> {
  const error = scanLines(text, REQUEST_NAMES);
  if (error !== undefined) return { error };
  const lineEnd = scan.startLineEnd;
  const methodEnd = text.indexOf(' ');
  if (methodEnd <= 0 || methodEnd >= lineEnd || methodEnd > 20) return { error: 'bad_request_line' };
  const m0 = text.charCodeAt(0);
  if (m0 < 0x41 || m0 > 0x5a) return { error: 'bad_request_line' };
  for (let k = 1; k < methodEnd; k++) if (!isMethodChar(text.charCodeAt(k))) return { error: 'bad_request_line' };
  const targetEnd = text.indexOf(' ', methodEnd + 1);
  // " HTTP/1.0" or " HTTP/1.1" must be all that is left
  if (targetEnd <= methodEnd + 1 || lineEnd - targetEnd !== 9 || !text.startsWith('HTTP/1.', targetEnd + 1)) {
    return { error: 'bad_request_line' };
  }
  const minor = text.charCodeAt(targetEnd + 8);
  if (minor !== 0x30 && minor !== 0x31) return { error: 'bad_request_line' };
  const headers = scan.headers;
  let framing = NO_BODY;
  if (scan.transferEncoding !== undefined) {
    // A request body must be delimited: nginx refuses any coding but chunked, and so do we.
    if (!isChunked(scan.transferEncoding)) return { error: 'bad_transfer_encoding' };
    framing = CHUNKED;
  } else if (scan.contentLength !== undefined) {
    const length = parseLength(scan.contentLength);
    if (length === undefined) return { error: 'bad_content_length' };
    if (length > 0) framing = { kind: 'length', length };
  }
  const target = text.slice(methodEnd + 1, targetEnd);
  const { path, query } = splitTarget(target);
  return {
    method: methodOf(text, methodEnd),
    target,
    path,
    query,
    httpVersion: minor === 0x31 ? '1.1' : '1.0',
    headers,
    headSize,
    framing,
  };
}

/** The status line is HTTP/1.x SP 3DIGIT, then nothing or SP and a reason without line breaks. */
export function parseResponseHead(text: string, headSize: number): HeadResult<ResponseHead> {
  const error = scanLines(text, RESPONSE_NAMES);
  if (error !== undefined) return { error };
  const lineEnd = scan.startLineEnd;
  if (lineEnd < 12 || !text.startsWith('HTTP/1.')) return { error: 'bad_status_line' };
  const minor = text.charCodeAt(7);
  if ((minor !== 0x30 && minor !== 0x31) || text.charCodeAt(8) !== 0x20) return { error: 'bad_status_line' };
  let statusCode = 0;
  for (let k = 9; k < 12; k++) {
    const c = text.charCodeAt(k);
    if (c < 0x30 || c > 0x39) return { error: 'bad_status_line' };
    statusCode = statusCode * 10 + (c - 0x30);
  }
  if (lineEnd > 12) {
    if (text.charCodeAt(12) !== 0x20) return { error: 'bad_status_line' };
    for (let k = 13; k < lineEnd; k++) {
      const c = text.charCodeAt(k);
      if (c === 0x0a || c === 0x0d || c === 0x2028 || c === 0x2029) return { error: 'bad_status_line' };
    }
  }
  if (statusCode < 100) return { error: 'bad_status_line' };
  let framing: BodyFraming;
  if (statusCode < 200 || statusCode === 204 || statusCode === 304) {
    framing = NO_BODY;
  } else if (scan.transferEncoding !== undefined) {
    framing = isChunked(scan.transferEncoding) ? CHUNKED : UNTIL_CLOSE;
  } else if (scan.contentLength !== undefined) {
    const length = parseLength(scan.contentLength);
    if (length === undefined) return { error: 'bad_content_length' };
    framing = length > 0 ? { kind: 'length', length } : NO_BODY;
  } else {
    framing = UNTIL_CLOSE;
  }
  return { statusCode, httpVersion: minor === 0x31 ? '1.1' : '1.0', headers: scan.headers, headSize, framing };
}

/** Splits a request-target into path and query; absolute-form targets keep only their path. */
export function splitTarget(target: string): { path: string; query?: string } {
  let rest = target;
  if (!rest.startsWith('/')) {
    const scheme = rest.indexOf('://');
    if (scheme > 0) {
      const slash = rest.indexOf('/', scheme + 3);
      const q = rest.indexOf('?', scheme + 3);
      rest = slash < 0 || (q >= 0 && q < slash) ? `/${q >= 0 ? rest.slice(q) : ''}` : rest.slice(slash);
    }
  }
  const hash = rest.indexOf('#');
  if (hash >= 0) rest = rest.slice(0, hash);
  const q = rest.indexOf('?');
  if (q < 0) return { path: rest };
  return { path: rest.slice(0, q), query: rest.slice(q + 1) };
}
