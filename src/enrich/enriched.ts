/**
 * An exchange with everything the outputs need decided, once: what the request log, the stats
 * line, the spans and the metrics read. They format it; none of them decides anything about it.
 */
import type { Exchange } from '../capture/exchange';
import { ERROR_NAMES, ErrorCode } from '../capture/exchange-layout';
import type { RouteInfo } from './kong/route-table';
import type { SamplingOutcome } from './sampler';
import type { PodInfo } from './pods';
import type { Redactor } from './redact';
import type { HostInfo } from './upstream-hosts';

/** errorKey for an exchange that ended normally but whose status is an error (>= 500 SERVER, >= 400 CLIENT) */
export const ERROR_STATUS = ErrorCode.Max;
/** errorKey for a gRPC call whose grpc-status is an error (https://opentelemetry.io/docs/specs/semconv/rpc/grpc/) */
export const ERROR_GRPC = ErrorCode.Max + 1;

/** grpc-status codes by number: error.type of a failed call */
const GRPC_STATUS_NAMES: readonly string[] = [
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
];

/** The codes that make a gRPC SERVER span an error; for a CLIENT span every code but OK does. */
const GRPC_SERVER_ERRORS = new Set([2, 4, 12, 13, 14, 15]);

/**
 * The errorKey of an exchange that ended normally: ERROR_STATUS for a status at or above
 * `errorStatus` (500 SERVER, 400 CLIENT), ERROR_GRPC for a failed gRPC call, else 0.
 */
export function statusErrorKey(ex: Exchange, server: boolean): number {
  if (ex.status >= (server ? 500 : 400)) return ERROR_STATUS;
  const grpc = ex.grpcStatus; // only set when the answer carried grpc-status
  if (grpc > 0 && (server ? GRPC_SERVER_ERRORS.has(grpc) : true)) return ERROR_GRPC;
  return 0;
}

/** kong.response.source */
export const ResponseSource = {
  /** CLIENT exchanges have none */
  None: 0,
  /** Kong produced the response itself: no route, auth failure, rate limit, a 502 after failed attempts */
  Kong: 1,
  Upstream: 2,
} as const;
export const RESPONSE_SOURCE_NAMES: readonly string[] = ['', 'kong', 'upstream'];

const STATUS_TEXT: string[] = [];

/** String(status) without a new string per exchange. */
export function statusText(status: number): string {
  if (status >= 1000 || status < 0) return String(status);
  return (STATUS_TEXT[status] ??= String(status));
}

/** The text of an errorKey: the error code's name, the status, or the grpc-status name; undefined for 0. */
export function errorTypeOf(errorKey: number, ex: Exchange): string | undefined {
  if (errorKey === 0) return undefined;
  if (errorKey === ERROR_STATUS) return statusText(ex.status);
  if (errorKey === ERROR_GRPC) return GRPC_STATUS_NAMES[ex.grpcStatus] ?? String(ex.grpcStatus);
  return ERROR_NAMES[errorKey];
}

const UNREAD = null;

export class EnrichedExchange {
  /** SERVER: the first of the CLIENT exchanges reported right after it (its attempts still in flight when it ended) */
  firstClient: EnrichedExchange | undefined = undefined;
  /** CLIENT: the next attempt held with the same SERVER */
  nextClient: EnrichedExchange | undefined = undefined;
  private _query: string | undefined | null = UNREAD;
  private _path: string | undefined | null = UNREAD;
  private _serverAddress: string | undefined | null = UNREAD;
  private _serverPort: number | undefined = undefined;

  constructor(
    readonly ex: Exchange,
    /** SERVER: the Kong route it took, when the Admin API is known */
    readonly route: RouteInfo | undefined,
    /** the pod of the worker that served it (node-wide agent only) */
    readonly pod: PodInfo | undefined,
    /** CLIENT: the upstream as Kong addressed it */
    readonly upstream: HostInfo | undefined,
    /** 0 = no error; an ErrorCode; ERROR_STATUS; or ERROR_GRPC */
    readonly errorKey: number,
    /** error.type: the error code's name, else the status when it counts as an error; undefined when none */
    readonly errorType: string | undefined,
    /** ResponseSource value */
    readonly responseSource: number,
    /**
     * SERVER, when an upstream attempt was seen: request start -> first upstream byte (plugins,
     * routing, buffering the upload), first upstream byte -> last upstream byte (all attempts),
     * and the rest. Clamped inside the exchange, so the three add up to its duration. -1 when none.
     */
    readonly beforeUpstreamNs: number,
    readonly upstreamNs: number,
    readonly afterUpstreamNs: number,
    /** spans are made for it, and why (src/enrich/sampler.ts; a CLIENT follows its SERVER); undefined: no spans */
    readonly sampling: SamplingOutcome | undefined,
    private readonly redactor: Redactor,
  ) {}

  /**
   * This exchange outlives its batch (a queued span): its frame, and those of the attempts
   * attached to it, are copied out so that they do not keep the batch alive.
   */
  keep(): void {
    this.ex.detach();
    for (let c = this.firstClient; c !== undefined; c = c.nextClient) c.ex.detach();
  }

  get sampled(): boolean {
    return this.sampling !== undefined;
  }

  get durationNs(): number {
    const d = this.ex.endNs - this.ex.startNs;
    return d > 0 ? d : 0;
  }

  get hasUpstreamSplit(): boolean {
    return this.beforeUpstreamNs >= 0;
  }

  get responseSourceName(): string {
    return RESPONSE_SOURCE_NAMES[this.responseSource];
  }

  /** The query with credential-looking values replaced; undefined when the target had no '?'. */
  get query(): string | undefined {
    if (this._query === UNREAD) {
      const raw = this.ex.query;
      this._query = raw === undefined ? undefined : this.redactor.query(raw);
    }
    return this._query;
  }

  /** The path with credential-looking path parameters (`;jsessionid=...`) replaced. */
  get path(): string | undefined {
    if (this._path === UNREAD) {
      const raw = this.ex.path;
      this._path = raw === undefined ? undefined : this.redactor.path(raw);
    }
    return this._path;
  }

  /** server.address: CLIENT, the upstream; SERVER, the Host the client asked for, else the local socket. */
  get serverAddress(): string | undefined {
    if (this._serverAddress === UNREAD) this.resolveServer();
    return this._serverAddress ?? undefined;
  }

  get serverPort(): number | undefined {
    if (this._serverAddress === UNREAD) this.resolveServer();
    return this._serverPort;
  }

  private resolveServer(): void {
    const ex = this.ex;
    if (!ex.isServer) {
      this._serverAddress = this.upstream?.address;
      this._serverPort = this.upstream?.port;
      return;
    }
    const parsed = hostOf(ex.host);
    if (parsed !== undefined) {
      this._serverAddress = parsed.address;
      this._serverPort = parsed.port ?? (ex.tls ? 443 : 80);
      return;
    }
    this._serverAddress = ex.localAddress;
    this._serverPort = ex.localAddress === undefined ? undefined : ex.localPort;
  }
}

type ParsedHost = { address: string; port?: number };

/** Parsed Host values: clients send a handful of them, so most exchanges parse nothing. */
const hosts = new Map<string, ParsedHost | null>();
const HOSTS_KEPT = 1024;

function hostOf(host: string | undefined): ParsedHost | undefined {
  if (host === undefined) return undefined;
  let parsed = hosts.get(host);
  if (parsed === undefined) {
    if (hosts.size >= HOSTS_KEPT) hosts.clear();
    parsed = parseHostHeader(host) ?? null;
    hosts.set(host, parsed);
  }
  return parsed ?? undefined;
}

/** "example.com:8000" / "[::1]:8000" / "example.com" -> address (lowercase) and port; bad input -> undefined. */
export function parseHostHeader(host: string | undefined): ParsedHost | undefined {
  if (host === undefined || host === '') return undefined;
  let address = host;
  let portText: string | undefined;
  if (host.startsWith('[')) {
    const close = host.indexOf(']');
    if (close < 0) return undefined;
    address = host.slice(1, close);
    if (host[close + 1] === ':') portText = host.slice(close + 2);
  } else {
    const colon = host.lastIndexOf(':');
    if (colon >= 0) {
      address = host.slice(0, colon);
      portText = host.slice(colon + 1);
    }
  }
  if (address === '') return undefined;
  const port = portText === undefined || !/^\d{1,5}$/.test(portText) ? undefined : Number(portText);
  return { address: address.toLowerCase(), port: port !== undefined && port > 0 && port < 65536 ? port : undefined };
}
