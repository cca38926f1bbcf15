/**
 * Socket addresses as the frames carry them (16 bytes, network order) -> text. Called lazily, when
 * an output first asks for an address.
 */
import { AF_INET, AF_INET6 } from './records';

/** IPv4 texts by address: peers repeat (load balancers, upstreams), so most lookups allocate nothing. */
const ipv4Texts = new Map<number, string>();
const IPV4_TEXTS = 4096;

function ipv4(buf: Uint8Array, at: number): string {
  const key = (buf[at] << 24) | (buf[at + 1] << 16) | (buf[at + 2] << 8) | buf[at + 3];
  let text = ipv4Texts.get(key);
  if (text === undefined) {
    if (ipv4Texts.size >= IPV4_TEXTS) ipv4Texts.clear();
    text = `${buf[at]}.${buf[at + 1]}.${buf[at + 2]}.${buf[at + 3]}`;
    ipv4Texts.set(key, text);
  }
  return text;
}

/** Network-order address bytes -> text; IPv4-mapped IPv6 is shown as the IPv4 address it is. */
export function formatAddress(family: number, buf: Uint8Array, at: number): string {
  if (family === AF_INET) return ipv4(buf, at);
  if (family !== AF_INET6) return '';
  let mapped = buf[at + 10] === 0xff && buf[at + 11] === 0xff;
  for (let i = 0; i < 10 && mapped; i++) mapped = buf[at + i] === 0;
  if (mapped) return ipv4(buf, at + 12);
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((buf[at + i] << 8) | buf[at + i + 1]);
  // RFC 5952: the longest run (leftmost on ties) of two or more zero groups becomes "::".
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (g: number[]): string => g.map((x) => x.toString(16)).join(':');
  if (bestStart < 0) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLen))}`;
}

/** "addr:port", with IPv6 in brackets. */
export function formatEndpoint(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}
