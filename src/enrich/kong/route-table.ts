/**
 * Kong's routes and services as the Admin API lists them, and a matcher that names the route a
 * request took: `http.route`, `kong.route.name` and `kong.service.name` on spans and metrics.
 * The matcher follows Kong's traditional router closely enough for naming: host and method
 * filters, regex paths (`~...`) by regex_priority, then the longest prefix.
 *
 * Everything a match returns is made when the table loads (one RouteInfo per route path, its span
 * names included), so resolving a request allocates nothing but the host it compares.
 */
import type { Exchange } from '../../capture/exchange';
import { Method, METHOD_NAMES } from '../../capture/exchange-layout';

/** What a request's route says about it; shared by every request that took it. */
export interface RouteInfo {
  /**
   * Stable for the agent's life for the same (route, name, service): metric series are keyed by
   * it. -1 when more distinct routes were seen than the agent keeps apart (overflow).
   */
  readonly index: number;
  /** the matching route path (a template, never the raw path): http.route; undefined for a route without paths */
  readonly route?: string;
  readonly routeName: string;
  readonly serviceName?: string;
  /** SERVER span name by Method value: "{method} {route}", or the method alone ("HTTP" for _OTHER) */
  readonly spanNames: readonly string[];
}

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

interface CompiledRoute {
  /** for a route without paths */
  info: RouteInfo;
  /** bit per Method value; 0 = any method */
  methodBits: number;
  /** methods outside the nine, as configured */
  otherMethods?: Set<string>;
  hosts?: { exact: Set<string>; suffixes: string[]; prefixes: string[] };
  regexPriority: number;
}

/** One configured path of a route. */
interface PathEntry {
  route: CompiledRoute;
  info: RouteInfo;
  /** a plain path; for a regex, the literal text every match starts with (a cheap test first) */
  prefix: string;
  regex?: RegExp;
}

const HTTP_PROTOCOLS = new Set(['http', 'https']);
/** Distinct (route, name, service) triples given their own metric series over the agent's life. */
export const MAX_ROUTE_INDEXES = 65535;

/** Span names without a route, by Method value. */
export const METHOD_SPAN_NAMES: readonly string[] = METHOD_NAMES.map((m, i) => (i === Method.Other ? 'HTTP' : m));

export class RouteTable {
  /** regex paths, by regex_priority (then configuration order): the first match wins */
  private regexPaths: PathEntry[] = [];
  /** plain paths, longest first (then by priority): the first match is the longest prefix */
  private prefixPaths: PathEntry[] = [];
  /** routes without paths: the first that matches, when no path did */
  private bare: CompiledRoute[] = [];
  private hostFilters = false;
  private count = 0;
  private readonly indexes = new Map<string, number>();

  get size(): number {
    return this.count;
  }

  /** Replaces the table; routes that cannot serve HTTP (grpc, tcp, tls streams) are left out. */
  load(routes: AdminRoute[], services: AdminService[]): void {
    const serviceNames = new Map(services.map((s) => [s.id, s.name ?? s.id]));
    const regexPaths: PathEntry[] = [];
    const prefixPaths: PathEntry[] = [];
    const bare: CompiledRoute[] = [];
    let count = 0;
    for (const r of routes) {
      if (r.protocols && !r.protocols.some((p) => HTTP_PROTOCOLS.has(p))) continue;
      const routeName = r.name ?? r.id;
      const serviceName = r.service ? serviceNames.get(r.service.id) : undefined;
      let methodBits = 0;
      let otherMethods: Set<string> | undefined;
      for (const m of r.methods ?? []) {
        const upper = m.toUpperCase();
        const value = METHOD_NAMES.indexOf(upper);
        if (value > Method.Other) methodBits |= 1 << value;
        else (otherMethods ??= new Set()).add(upper);
      }
      if (otherMethods !== undefined) methodBits |= 1 << Method.Other;
      const route: CompiledRoute = {
        info: this.info(undefined, routeName, serviceName),
        methodBits,
        otherMethods,
        hosts: r.hosts?.length ? compileHosts(r.hosts) : undefined,
        regexPriority: r.regex_priority ?? 0,
      };
      const paths: PathEntry[] = [];
      for (const p of r.paths ?? []) {
        if (p.startsWith('~')) {
          try {
            const regex = new RegExp(`^${p.slice(1)}`);
            const prefix = literalPrefix(p.slice(1));
            paths.push({ route, info: this.info(p.slice(1), routeName, serviceName), prefix, regex });
          } catch {
            // A regex JavaScript cannot compile (PCRE-only syntax) simply never matches here.
          }
        } else {
          paths.push({ route, info: this.info(p, routeName, serviceName), prefix: p });
        }
      }
      if (r.paths?.length && paths.length === 0) continue; // only paths this matcher cannot read
      count++;
      if (paths.length === 0) bare.push(route);
      for (const p of paths) (p.regex !== undefined ? regexPaths : prefixPaths).push(p);
    }
    // Stable sorts: configuration order breaks ties, as a walk over the routes in order would.
    const byPriority = (a: { regexPriority: number }, b: { regexPriority: number }) =>
      b.regexPriority - a.regexPriority;
    regexPaths.sort((a, b) => byPriority(a.route, b.route));
    prefixPaths.sort((a, b) => byPriority(a.route, b.route)).sort((a, b) => b.prefix.length - a.prefix.length);
    bare.sort(byPriority);
    this.regexPaths = regexPaths;
    this.prefixPaths = prefixPaths;
    this.bare = bare;
    this.hostFilters = [...regexPaths, ...prefixPaths].some((p) => p.route.hosts) || bare.some((r) => r.hosts);
    this.count = count;
  }

  /**
   * The route a SERVER exchange took, or undefined (Kong's own 404, or no table yet): a regex
   * path by priority, else the longest plain prefix, else a route without paths.
   */
  resolve(ex: Exchange): RouteInfo | undefined {
    if (this.count === 0) return undefined;
    const path = ex.path ?? '';
    const host = this.hostFilters ? hostOnly(ex.host) : '';
    const regexPaths = this.regexPaths;
    for (let i = 0; i < regexPaths.length; i++) {
      const p = regexPaths[i];
      if (path.startsWith(p.prefix) && p.regex!.test(path) && admits(p.route, ex, host)) return p.info;
    }
    const prefixPaths = this.prefixPaths;
    for (let i = 0; i < prefixPaths.length; i++) {
      const p = prefixPaths[i];
      if (path.startsWith(p.prefix) && admits(p.route, ex, host)) return p.info;
    }
    const bare = this.bare;
    for (let i = 0; i < bare.length; i++) if (admits(bare[i], ex, host)) return bare[i].info;
    return undefined;
  }

  private info(route: string | undefined, routeName: string, serviceName: string | undefined): RouteInfo {
    const key = `${route ?? ''}\u0000${routeName}\u0000${serviceName ?? ''}`;
    let index = this.indexes.get(key);
    if (index === undefined) {
      index = this.indexes.size < MAX_ROUTE_INDEXES ? this.indexes.size + 1 : -1;
      if (index > 0) this.indexes.set(key, index);
    }
    const spanNames = METHOD_SPAN_NAMES.map((m) => (route === undefined ? m : `${m} ${route}`));
    return { index, route, routeName, serviceName, spanNames };
  }
}

/**
 * The text every match of an anchored regex starts with: its leading characters up to the first
 * one with a meaning, less the last if a quantifier that allows none follows it ("/users/\\d+" -> "/users/").
 */
export function literalPrefix(source: string): string {
  if (source.includes('|')) return ''; // "^a|b": the alternatives need not start alike
  let end = 0;
  while (end < source.length && !'\\^$.|?*+()[]{}'.includes(source[end])) end++;
  if (end < source.length && '?*{'.includes(source[end])) end--;
  return source.slice(0, Math.max(0, end));
}

/** The route's method and host filters let the request through. */
function admits(route: CompiledRoute, ex: Exchange, host: string): boolean {
  const bits = route.methodBits;
  if (bits !== 0) {
    const method = ex.method;
    if ((bits & (1 << method)) === 0) return false;
    if (method === Method.Other && !route.otherMethods!.has(ex.methodText ?? '')) return false;
  }
  return route.hosts === undefined || hostMatches(route.hosts, host);
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
  if (hosts.exact.has(host)) return true;
  for (const s of hosts.suffixes) if (host.endsWith(s)) return true;
  for (const p of hosts.prefixes) if (host.startsWith(p)) return true;
  return false;
}

function hostOnly(host: string | undefined): string {
  if (!host) return '';
  const h = host.toLowerCase();
  if (h.startsWith('[')) return h.slice(0, h.indexOf(']') + 1);
  const colon = h.indexOf(':');
  return colon < 0 ? h : h.slice(0, colon);
}
