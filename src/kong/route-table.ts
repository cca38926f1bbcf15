/**
 * Kong's routes and services as the Admin API lists them, and a matcher that names the route a
 * request took: `http.route`, `kong.route.name` and `kong.service.name` on spans and metrics.
 * The matcher follows Kong's traditional router closely enough for naming: host and method
 * filters, regex paths (`~...`) by regex_priority, then the longest prefix.
 */
import type { RouteInfo } from '../otel/spans';
import type { HttpExchange } from '../requests/types';

/** The fields of an Admin API route this matcher uses. */
export interface AdminRoute {
  id: string;
  name?: string | null;
  protocols?: string[] | null;
  methods?: string[] | null;
  hosts?: string[] | null;
  paths?: string[] | null;
  regex_priority?: number | null;
  service?: { id: string } | null;
}

export interface AdminService {
  id: string;
  name?: string | null;
}

interface CompiledPath {
  /** as configured: the http.route value (a template, never a raw request path) */
  text: string;
  prefix?: string;
  regex?: RegExp;
}

interface CompiledRoute {
  info: RouteInfo;
  methods?: Set<string>;
  hosts?: { exact: Set<string>; suffixes: string[]; prefixes: string[] };
  paths: CompiledPath[];
  regexPriority: number;
}

const HTTP_PROTOCOLS = new Set(['http', 'https']);

export class RouteTable {
  private routes: CompiledRoute[] = [];
  private lastExchange?: HttpExchange;
  private lastInfo?: RouteInfo;

  get size(): number {
    return this.routes.length;
  }

  /** Replaces the table; routes that cannot serve HTTP (grpc, tcp, tls streams) are left out. */
  load(routes: AdminRoute[], services: AdminService[]): void {
    const serviceNames = new Map(services.map((s) => [s.id, s.name ?? s.id]));
    const compiled: CompiledRoute[] = [];
    for (const r of routes) {
      if (r.protocols && !r.protocols.some((p) => HTTP_PROTOCOLS.has(p))) continue;
      const paths: CompiledPath[] = [];
      for (const p of r.paths ?? []) {
        if (p.startsWith('~')) {
          try {
            paths.push({ text: p.slice(1), regex: new RegExp(`^${p.slice(1)}`) });
          } catch {
            // A regex JavaScript cannot compile (PCRE-only syntax) simply never matches here.
          }
        } else {
          paths.push({ text: p, prefix: p });
        }
      }
      if (r.paths?.length && paths.length === 0) continue; // only paths this matcher cannot read
      compiled.push({
        info: {
          routeName: r.name ?? r.id,
          serviceName: r.service ? serviceNames.get(r.service.id) : undefined,
        },
        methods: r.methods?.length ? new Set(r.methods.map((m) => m.toUpperCase())) : undefined,
        hosts: r.hosts?.length ? compileHosts(r.hosts) : undefined,
        paths,
        regexPriority: r.regex_priority ?? 0,
      });
    }
    // Regex paths are tried by priority before any prefix, as Kong does.
    compiled.sort((a, b) => b.regexPriority - a.regexPriority);
    this.routes = compiled;
    this.lastExchange = undefined;
  }

  /** The route a server exchange took, or undefined (Kong's own 404, or no table yet). */
  resolve(ex: HttpExchange): RouteInfo | undefined {
    if (ex === this.lastExchange) return this.lastInfo; // spans and metrics ask in turn
    this.lastExchange = ex;
    this.lastInfo = ex.direction === 'server' ? this.match(ex.method, hostOnly(ex.host), ex.path) : undefined;
    return this.lastInfo;
  }

  private match(method: string, host: string, path: string): RouteInfo | undefined {
    let best: { route: CompiledRoute; path?: CompiledPath } | undefined;
    let bestPrefix = -1;
    for (const route of this.routes) {
      if (route.methods && !route.methods.has(method)) continue;
      if (route.hosts && !hostMatches(route.hosts, host)) continue;
      if (route.paths.length === 0) {
        if (!best) best = { route };
        continue;
      }
      for (const p of route.paths) {
        if (p.regex) {
          if (p.regex.test(path)) return { ...route.info, route: p.text };
        } else if (p.prefix !== undefined && path.startsWith(p.prefix) && p.prefix.length > bestPrefix) {
          best = { route, path: p };
          bestPrefix = p.prefix.length;
        }
      }
    }
    if (!best) return undefined;
    return best.path ? { ...best.route.info, route: best.path.text } : best.route.info;
  }
}

function compileHosts(hosts: string[]) {
  const exact = new Set<string>();
  const suffixes: string[] = [];
  const prefixes: string[] = [];
  for (const h of hosts.map((x) => x.toLowerCase())) {
    if (h.startsWith('*.')) suffixes.push(h.slice(1));
    else if (h.endsWith('.*')) prefixes.push(h.slice(0, -1));
    else exact.add(h);
  }
  return { exact, suffixes, prefixes };
}

function hostMatches(hosts: NonNullable<CompiledRoute['hosts']>, host: string): boolean {
  return (
    hosts.exact.has(host) ||
    hosts.suffixes.some((s) => host.endsWith(s)) ||
    hosts.prefixes.some((p) => host.startsWith(p))
  );
}

function hostOnly(host: string | undefined): string {
  if (!host) return '';
  const h = host.toLowerCase();
  if (h.startsWith('[')) return h.slice(0, h.indexOf(']') + 1);
  const colon = h.indexOf(':');
  return colon < 0 ? h : h.slice(0, colon);
}
