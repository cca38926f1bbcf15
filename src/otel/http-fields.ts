/**
 * Bounded, semantic-convention-shaped fields of an exchange that spans and metrics share:
 * the method (unknown ones folded into _OTHER), the scheme, the server's name and port.
 */
import type { HttpExchange } from '../requests/types';

const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH']);

/** Semantic conventions: methods outside the well-known set are reported as "_OTHER". */
export function normalizeMethod(method: string): string {
  return KNOWN_METHODS.has(method) ? method : '_OTHER';
}

/** Kong's TLS listeners by default (8443 proxy_ssl, 443 in most images). */
const TLS_PORTS = new Set([443, 8443]);

/**
 * The capture sees plaintext only after TLS is terminated, so the scheme is inferred from the
 * listener's port (server) or the peer's port (client).
 */
export function schemeOf(ex: HttpExchange): 'http' | 'https' {
  const port = ex.direction === 'server' ? ex.local?.port : ex.peer?.port;
  return port !== undefined && TLS_PORTS.has(port) ? 'https' : 'http';
}

export interface HostPort {
  address?: string;
  port?: number;
}

/** "example.com:8000" / "[::1]:8000" / "example.com" -> address and port; bad input -> {}. */
export function parseHost(host: string | undefined): HostPort {
  if (host === undefined || host === '') return {};
  let address = host;
  let portText: string | undefined;
  if (host.startsWith('[')) {
    const close = host.indexOf(']');
    if (close < 0) return {};
    address = host.slice(1, close);
    if (host[close + 1] === ':') portText = host.slice(close + 2);
  } else {
    const colon = host.lastIndexOf(':');
    if (colon >= 0) {
      address = host.slice(0, colon);
      portText = host.slice(colon + 1);
    }
  }
  const port = portText === undefined ? undefined : Number(portText);
  return {
    address: address.toLowerCase(),
    port: port !== undefined && Number.isInteger(port) && port > 0 && port < 65536 ? port : undefined,
  };
}

/** server.address/server.port: the Host header when present (what the client asked for), else the socket. */
export function serverOf(ex: HttpExchange): HostPort {
  const fromHost = parseHost(ex.host);
  const socket = ex.direction === 'server' ? ex.local : ex.peer;
  const scheme = schemeOf(ex);
  return {
    address: fromHost.address ?? socket?.address,
    port: fromHost.port ?? (fromHost.address !== undefined ? (scheme === 'https' ? 443 : 80) : socket?.port),
  };
}
