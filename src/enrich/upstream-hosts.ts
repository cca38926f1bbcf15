/**
 * server.address and server.port of an upstream attempt (CLIENT): the Host header Kong sent, else
 * the socket's peer. Interned straight from the frame's bytes, so repeated upstreams cost a hash
 * and a compare, and metric series are keyed by a number instead of a string.
 */
import type { Exchange } from '../capture/exchange';
import { STRING_FIELDS } from '../capture/exchange';

export interface HostInfo {
  /** 1-based, stable for the agent's life; -1 when the table was full (metrics: overflow) */
  readonly index: number;
  readonly address: string;
  readonly port: number | undefined;
}

/** Distinct upstream host:port pairs kept apart over the agent's life. */
export const MAX_UPSTREAM_HOSTS = 4096;

const S_HOST = STRING_FIELDS.host;
const FNV_OFFSET = 0x811c9dc5 | 0;
const FNV_PRIME = 0x01000193;
const COLON = 0x3a;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;

export class HostTable {
  private readonly slots: (HostInfo | undefined)[];
  private readonly hashes: Int32Array;
  private readonly mask: number;
  private count = 0;

  constructor(private readonly max = MAX_UPSTREAM_HOSTS) {
    let capacity = 16;
    while (capacity < max * 2) capacity *= 2;
    this.slots = new Array<HostInfo | undefined>(capacity).fill(undefined);
    this.hashes = new Int32Array(capacity);
    this.mask = capacity - 1;
  }

  get size(): number {
    return this.count;
  }

  /** CLIENT: the upstream as Kong addressed it; undefined when neither Host nor socket is known. */
  of(ex: Exchange): HostInfo | undefined {
    const len = ex.stringLength(S_HOST);
    if (len > 0) {
      const buf = ex.frame;
      const start = ex.stringStart(S_HOST);
      const end = start + len;
      let addrStart = start;
      let addrEnd = end;
      let portStart = -1;
      if (buf[start] === OPEN_BRACKET) {
        let close = start + 1;
        while (close < end && buf[close] !== CLOSE_BRACKET) close++;
        if (close < end) {
          addrStart = start + 1;
          addrEnd = close;
          if (close + 1 < end && buf[close + 1] === COLON) portStart = close + 2;
        } else {
          addrEnd = addrStart; // "[..." without "]": not a host
        }
      } else {
        let colon = end - 1;
        while (colon >= start && buf[colon] !== COLON) colon--;
        if (colon >= start) {
          addrEnd = colon;
          portStart = colon + 1;
        }
      }
      if (addrEnd > addrStart) {
        let port = portStart < 0 ? -1 : parsePort(buf, portStart, end);
        if (port < 0) port = ex.tls ? 443 : 80;
        return this.fromBytes(buf, addrStart, addrEnd, port);
      }
    }
    const peer = ex.peerAddress;
    return peer === undefined ? undefined : this.fromString(peer, ex.peerPort);
  }

  private fromBytes(buf: Uint8Array, start: number, end: number, port: number): HostInfo {
    let h = FNV_OFFSET;
    for (let i = start; i < end; i++) h = Math.imul(h ^ lower(buf[i]), FNV_PRIME);
    h = Math.imul(h ^ port, FNV_PRIME);
    const len = end - start;
    for (let slot = h & this.mask; ; slot = (slot + 1) & this.mask) {
      const entry = this.slots[slot];
      if (entry === undefined) {
        return this.add(slot, h, latin1Lower(buf, start, end), port);
      }
      if (this.hashes[slot] !== h || entry.port !== port || entry.address.length !== len) continue;
      const a = entry.address;
      let same = true;
      for (let i = 0; i < len && same; i++) same = a.charCodeAt(i) === lower(buf[start + i]);
      if (same) return entry;
    }
  }

  private fromString(address: string, port: number): HostInfo {
    let h = FNV_OFFSET;
    for (let i = 0; i < address.length; i++) h = Math.imul(h ^ address.charCodeAt(i), FNV_PRIME);
    h = Math.imul(h ^ port, FNV_PRIME);
    for (let slot = h & this.mask; ; slot = (slot + 1) & this.mask) {
      const entry = this.slots[slot];
      if (entry === undefined) return this.add(slot, h, address, port);
      if (this.hashes[slot] === h && entry.port === port && entry.address === address) return entry;
    }
  }

  private add(slot: number, hash: number, address: string, port: number): HostInfo {
    if (this.count >= this.max) return { index: -1, address, port };
    const info: HostInfo = { index: ++this.count, address, port };
    this.slots[slot] = info;
    this.hashes[slot] = hash;
    return info;
  }
}

function lower(c: number): number {
  return c >= 0x41 && c <= 0x5a ? c + 0x20 : c;
}

function latin1Lower(buf: Uint8Array, start: number, end: number): string {
  let s = '';
  for (let i = start; i < end; i++) s += String.fromCharCode(lower(buf[i]));
  return s;
}

/** Decimal digits only, 1..65535; -1 otherwise. */
function parsePort(buf: Uint8Array, start: number, end: number): number {
  if (start >= end || end - start > 5) return -1;
  let n = 0;
  for (let i = start; i < end; i++) {
    const d = buf[i] - 0x30;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n > 0 && n < 65536 ? n : -1;
}
