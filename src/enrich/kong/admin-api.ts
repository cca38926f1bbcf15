/**
 * Keeps a RouteTable in step with Kong's Admin API: lists /routes and /services (following
 * `next` pages) at start and every refresh interval. A failing Admin API is said once and the
 * last good table stays in use; nothing here can stop capture.
 */
import type { Logger } from '../../log';
import { RouteTable, type AdminRoute, type AdminService } from './route-table';

/** Enough for any real gateway; a bound so a misbehaving endpoint cannot grow memory. */
const MAX_ENTITIES = 20_000;
const PAGE_SIZE = 1000;

export interface AdminApiOptions {
  url: string;
  /** Kong Enterprise RBAC token, sent as Kong-Admin-Token */
  token?: string;
  refreshMs?: number;
  timeoutMs?: number;
}

export class KongAdminRoutes {
  readonly table = new RouteTable();
  private timer?: NodeJS.Timeout;
  private failing = false;
  private readonly base: string;

  constructor(
    private readonly options: AdminApiOptions,
    private readonly log: Pick<Logger, 'info' | 'warn' | 'debug'>,
  ) {
    this.base = options.url.replace(/\/+$/, '');
  }

  /** First load in the background; resolves once it has been tried. */
  start(): Promise<void> {
    const first = this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.options.refreshMs ?? 30_000);
    this.timer.unref();
    return first;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  async refresh(): Promise<void> {
    try {
      const [routes, services] = await Promise.all([
        this.list<AdminRoute>('/routes'),
        this.list<AdminService>('/services'),
      ]);
      const before = this.table.size;
      this.table.load(routes, services);
      if (this.failing || before !== this.table.size) {
        this.log.info('Kong routes loaded from the Admin API', {
          url: this.base,
          routes: this.table.size,
          services: services.length,
        });
      }
      this.failing = false;
    } catch (err) {
      const details = { url: this.base, error: (err as Error).message };
      if (this.failing) this.log.debug('Kong Admin API still unreachable', details);
      else
        this.log.warn('Kong Admin API unreachable: spans and metrics carry no route names until it answers', details);
      this.failing = true;
    }
  }

  private async list<T>(path: string): Promise<T[]> {
    const out: T[] = [];
    let next: string | null = `${path}?size=${PAGE_SIZE}`;
    while (next) {
      const res: Response = await fetch(this.base + next, {
        headers: this.options.token ? { 'Kong-Admin-Token': this.options.token } : {},
        signal: AbortSignal.timeout(this.options.timeoutMs ?? 5000),
      });
      if (!res.ok) throw new Error(`GET ${path}: HTTP ${res.status}`);
      const page = (await res.json()) as { data?: T[]; next?: string | null };
      if (!Array.isArray(page.data)) throw new Error(`GET ${path}: not a Kong entity list`);
      out.push(...page.data);
      if (out.length > MAX_ENTITIES) throw new Error(`GET ${path}: more than ${MAX_ENTITIES} entities`);
      // Kong answers with a path ("/routes?offset=...") or a full URL, depending on the version.
      next = page.next
        ? page.next.startsWith('http')
          ? new URL(page.next).pathname + new URL(page.next).search
          : page.next
        : null;
    }
    return out;
  }
}
