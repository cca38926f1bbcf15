/**
 * One complete HTTP/1.x head (start line + header lines) -> the fields exchanges carry.
 * Only selected headers are kept, bounded in count and length: heads are untrusted input
 * from every client on the internet, and outputs must stay small.
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

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const METHOD = /^[A-Z][A-Z_-]{0,19}$/;
const REQUEST_LINE = /^([^ ]+) ([^ ]+) HTTP\/1\.([01])$/;
const STATUS_LINE = /^HTTP\/1\.([01]) (\d{3})(?: .*)?$/;

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

interface Lines {
  start: string;
  headers: Record<string, string>;
  contentLength?: string;
  transferEncoding?: string;
  error?: string;
}

function parseLines(text: string, keep: ReadonlySet<string>): Lines {
  // Heads end lines with CRLF in practice; bare LF is tolerated, as nginx does.
  const crlf = text.includes('\r\n');
  const lines = text.split(crlf ? '\r\n' : '\n');
  const start = crlf ? lines[0] : stripCr(lines[0]);
  const headers: Record<string, string> = {};
  let kept = 0;
  let contentLength: string | undefined;
  let transferEncoding: string | undefined;
  let last: string | undefined;
  for (let i = 1; i < lines.length; i++) {
    const line = crlf ? lines[i] : stripCr(lines[i]);
    if (line === '') continue;
    const c0 = line.charCodeAt(0);
    if (c0 === 0x20 || c0 === 0x09) {
      // obsolete line folding: continues the previous header's value
      if (last !== undefined && headers[last] !== undefined) {
        headers[last] = bound(`${headers[last]} ${line.trim()}`);
      }
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) return { start, headers, error: 'bad_header_line' };
    const rawName = line.slice(0, colon);
    if (!TOKEN.test(rawName)) return { start, headers, error: 'bad_header_name' };
    const name = rawName.toLowerCase();
    last = undefined;
    if (name === 'content-length') {
      const value = line.slice(colon + 1).trim();
      if (contentLength !== undefined && contentLength !== value)
        return { start, headers, error: 'bad_content_length' };
      contentLength = value;
    } else if (name === 'transfer-encoding') {
      const value = line.slice(colon + 1).trim();
      transferEncoding = transferEncoding === undefined ? value : `${transferEncoding}, ${value}`;
    }
    if (!keep.has(name)) continue;
    last = name;
    const value = line.slice(colon + 1).trim();
    const prior = headers[name];
    if (prior !== undefined) {
      headers[name] = bound(`${prior}, ${value}`);
    } else if (kept < MAX_KEPT_HEADERS) {
      headers[name] = bound(value);
      kept++;
    }
  }
  return { start, headers, contentLength, transferEncoding };
}

function stripCr(line: string): string {
  return line.charCodeAt(line.length - 1) === 0x0d ? line.slice(0, -1) : line;
}

function bound(value: string): string {
  return value.length > MAX_HEADER_VALUE ? value.slice(0, MAX_HEADER_VALUE) : value;
}

function isChunked(te: string): boolean {
  const codings = te.toLowerCase().split(',');
  return codings[codings.length - 1].trim() === 'chunked';
}

/** Content-Length as a safe integer, or undefined when it is not one. */
function parseLength(value: string): number | undefined {
  if (!/^\d{1,15}$/.test(value)) return undefined;
  return Number(value);
}

/** `text` is the head as latin1, from the start line through the blank line. */
export function parseRequestHead(text: string, headSize: number): HeadResult<RequestHead> {
  const lines = parseLines(text, REQUEST_HEADERS);
  if (lines.error) return { error: lines.error };
  const m = REQUEST_LINE.exec(lines.start);
  if (!m || !METHOD.test(m[1])) return { error: 'bad_request_line' };
  const target = m[2];
  let framing: BodyFraming = { kind: 'none' };
  if (lines.transferEncoding !== undefined) {
    // A request body must be delimited: nginx refuses any coding but chunked, and so do we.
    if (!isChunked(lines.transferEncoding)) return { error: 'bad_transfer_encoding' };
    framing = { kind: 'chunked' };
  } else if (lines.contentLength !== undefined) {
    const length = parseLength(lines.contentLength);
    if (length === undefined) return { error: 'bad_content_length' };
    if (length > 0) framing = { kind: 'length', length };
  }
  const { path, query } = splitTarget(target);
  return { method: m[1], target, path, query, httpVersion: `1.${m[3]}`, headers: lines.headers, headSize, framing };
}

export function parseResponseHead(text: string, headSize: number): HeadResult<ResponseHead> {
  const lines = parseLines(text, RESPONSE_HEADERS);
  if (lines.error) return { error: lines.error };
  const m = STATUS_LINE.exec(lines.start);
  if (!m) return { error: 'bad_status_line' };
  const statusCode = Number(m[2]);
  if (statusCode < 100) return { error: 'bad_status_line' };
  let framing: BodyFraming;
  if (statusCode < 200 || statusCode === 204 || statusCode === 304) {
    framing = { kind: 'none' };
  } else if (lines.transferEncoding !== undefined) {
    framing = isChunked(lines.transferEncoding) ? { kind: 'chunked' } : { kind: 'close' };
  } else if (lines.contentLength !== undefined) {
    const length = parseLength(lines.contentLength);
    if (length === undefined) return { error: 'bad_content_length' };
    framing = length > 0 ? { kind: 'length', length } : { kind: 'none' };
  } else {
    framing = { kind: 'close' };
  }
  return { statusCode, httpVersion: `1.${m[1]}`, headers: lines.headers, headSize, framing };
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
