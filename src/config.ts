/**
 * The agent's own settings, read from the environment once at start (OTEL_* variables are
 * read by src/otel/config.ts, as the OpenTelemetry specification describes them).
 * Every variable here is documented in the README's configuration table and in --help.
 */
import { LogLevel, parseLogLevel } from './log';

export type CaptureMode = 'syscalls' | 'libc';
/** auto: nginx's own TLS recv/send when the binary has them, else OpenSSL's calls */
export type TlsUprobes = 'auto' | 'openssl' | 'off';
export type WatchScope = 'netns' | 'host';

export interface AgentConfig {
  logLevel: LogLevel;
  jsonLog: boolean;
  /** one log line per finished request */
  logRequests: boolean;
  processName: string;
  /** only the Kong master started with exactly this -p prefix */
  kongPrefix?: string;
  scope: WatchScope;
  hostProc: string;
  statsIntervalMs: number;
  captureMode: CaptureMode;
  luaUprobes: boolean;
  /** uprobes that read the plaintext of TLS connections */
  tlsUprobes: TlsUprobes;
  ringBufferBytes: number;
  captureBytes: number;
  ignorePorts: number[];
  healthPort: number;
  healthAddress: string;
  /** the live view's snapshot endpoint (kong-watcher top); 0 = off */
  topPort: number;
  topAddress: string;
  kongAdminUrl?: string;
  kongAdminToken?: string;
  redactQueryKeys: string[];
  /** spans for every error (5xx or an error type), whatever the sampler's ratio */
  sampleKeepErrors: boolean;
  /** spans for every request at least this slow, ms; 0 = off */
  sampleKeepSlowerThanMs: number;
}

export class ConfigError extends Error {}

/** A documented environment variable: --help prints these rows, the README's table has the same. */
export interface Variable {
  name: string;
  default: string;
  meaning: string;
}

/** One row per variable: the single source for parsing, defaults and the --help text. */
export const VARIABLES: Variable[] = [
  { name: 'LOG_LEVEL', default: 'info', meaning: 'debug, info, warn or error' },
  { name: 'ENABLE_JSON_LOG', default: 'false', meaning: 'true: one JSON object per line (requests, stats, logs)' },
  { name: 'LOG_REQUESTS', default: 'true', meaning: 'false: no line per request (metrics and spans only)' },
  {
    name: 'KONG_PROCESS_NAME',
    default: 'kong',
    meaning: 'a Kong master has this as a component of its -p prefix, or as its name',
  },
  { name: 'KONG_PREFIX', default: '', meaning: 'only the master started with exactly this -p prefix' },
  {
    name: 'KONG_WATCH_SCOPE',
    default: 'netns',
    meaning: "netns: only Kong in the agent's network namespace (sidecar); host: every Kong on the node (DaemonSet)",
  },
  { name: 'HOST_PROC', default: '/proc', meaning: "the host's procfs (/host/proc in the sidecar)" },
  {
    name: 'STATS_INTERVAL',
    default: '10s',
    meaning: 'how often the stats line is logged (500ms, 10s, 1m; a bare number is seconds; 0 = never)',
  },
  {
    name: 'CAPTURE_MODE',
    default: 'syscalls',
    meaning: 'syscalls: syscall tracepoints carry the bytes (cheap); libc: libc uprobes',
  },
  {
    name: 'LUA_UPROBES',
    default: 'false',
    meaning: "true: uprobes on ngx_http_lua_*_handler (time in Kong's Lua phases)",
  },
  {
    name: 'TLS_UPROBES',
    default: 'true',
    meaning:
      "true: TLS plaintext from nginx's ngx_ssl_recv/ngx_ssl_write, else OpenSSL's SSL_read/SSL_write; " +
      'openssl: always OpenSSL; false: none (requests on TLS connections are not reported)',
  },
  {
    name: 'RINGBUF_SIZE',
    default: '8388608',
    // 8 MiB holds ~200 ms of records at a saturated worker's rate, longer than a 200m CPU limit's
    // throttling; VmRSS counts the ring twice (it is mapped twice), the memory cgroup once.
    meaning: 'ring buffer bytes (a power of two): how much the kernel holds while the agent is busy or throttled',
  },
  {
    name: 'CAPTURE_BYTES',
    default: '16384',
    meaning: 'payload bytes copied per read/write, 64 to 16384 (heads up to this size are parsed whole)',
  },
  {
    name: 'IGNORE_PORTS',
    default: '8001,8444,8002,8445',
    meaning: "Kong's local ports whose traffic is not reported (Admin API, Manager)",
  },
  { name: 'HEALTH_PORT', default: '8686', meaning: 'port of /healthz and /readyz (0 = off)' },
  { name: 'HEALTH_ADDRESS', default: '0.0.0.0', meaning: 'address the health endpoint binds' },
  { name: 'TOP_PORT', default: '8687', meaning: 'port of the snapshot kong-watcher top reads (0 = off)' },
  {
    name: 'TOP_ADDRESS',
    default: '127.0.0.1',
    meaning: 'address the snapshot endpoint binds (its route figures and paths are not for the network)',
  },
  {
    name: 'KONG_ADMIN_URL',
    default: '',
    meaning:
      "Kong's Admin API (e.g. http://127.0.0.1:8001, set in the sidecar manifest): routes and services are listed every 30 s and name http.route, kong.route.name, kong.service.name and the span name; its port is never reported as traffic",
  },
  {
    name: 'KONG_ADMIN_TOKEN',
    default: '',
    meaning: 'sent as Kong-Admin-Token to the Admin API (Kong Enterprise RBAC)',
  },
  {
    name: 'REDACT_QUERY_KEYS',
    default: '',
    meaning:
      'query and path-parameter names to redact, comma separated: "name" adds a pattern (names containing it), "-name" turns a default off (defaults: token, secret, password, passwd, pwd, auth, key, session, signature, credential, jwt; exactly code, sig)',
  },
  {
    name: 'SAMPLE_KEEP_ERRORS',
    default: 'true',
    meaning:
      'true: spans for every error (5xx, or an error type such as client_closed) whatever OTEL_TRACES_SAMPLER keeps; decided after the response',
  },
  {
    name: 'SAMPLE_KEEP_SLOWER_THAN',
    default: '',
    meaning:
      'a duration (250ms, 1s): spans for every request at least this slow, whatever OTEL_TRACES_SAMPLER keeps; unset or 0 = off',
  },
];

type Env = Record<string, string | undefined>;

export function loadConfig(env: Env = process.env): AgentConfig {
  const get = (name: string): string => {
    const value = env[name];
    if (value !== undefined && value.trim() !== '') return value.trim();
    return VARIABLES.find((v) => v.name === name)?.default ?? '';
  };
  const ringBufferBytes = parseInteger('RINGBUF_SIZE', get('RINGBUF_SIZE'), 4096, 1 << 30);
  if ((ringBufferBytes & (ringBufferBytes - 1)) !== 0) {
    throw new ConfigError(`RINGBUF_SIZE must be a power of two, got ${ringBufferBytes}`);
  }
  return {
    logLevel: parseLogLevel(get('LOG_LEVEL')),
    jsonLog: parseBoolean('ENABLE_JSON_LOG', get('ENABLE_JSON_LOG')),
    logRequests: parseBoolean('LOG_REQUESTS', get('LOG_REQUESTS')),
    processName: get('KONG_PROCESS_NAME'),
    kongPrefix: get('KONG_PREFIX') || undefined,
    scope: parseChoice('KONG_WATCH_SCOPE', get('KONG_WATCH_SCOPE'), ['netns', 'host'] as const),
    hostProc: get('HOST_PROC').replace(/\/+$/, '') || '/',
    statsIntervalMs: parseDuration('STATS_INTERVAL', get('STATS_INTERVAL')),
    captureMode: parseChoice('CAPTURE_MODE', get('CAPTURE_MODE'), ['syscalls', 'libc'] as const),
    luaUprobes: parseBoolean('LUA_UPROBES', get('LUA_UPROBES')),
    tlsUprobes: parseTlsUprobes(get('TLS_UPROBES')),
    ringBufferBytes,
    captureBytes: parseInteger('CAPTURE_BYTES', get('CAPTURE_BYTES'), 64, 16384),
    ignorePorts: parseList(get('IGNORE_PORTS')).map((p) => parseInteger('IGNORE_PORTS', p, 1, 65535)),
    healthPort: parseInteger('HEALTH_PORT', get('HEALTH_PORT'), 0, 65535),
    healthAddress: get('HEALTH_ADDRESS'),
    topPort: parseInteger('TOP_PORT', get('TOP_PORT'), 0, 65535),
    topAddress: get('TOP_ADDRESS'),
    kongAdminUrl: parseUrl('KONG_ADMIN_URL', get('KONG_ADMIN_URL')),
    kongAdminToken: get('KONG_ADMIN_TOKEN') || undefined,
    redactQueryKeys: parseList(get('REDACT_QUERY_KEYS')),
    sampleKeepErrors: parseBoolean('SAMPLE_KEEP_ERRORS', get('SAMPLE_KEEP_ERRORS')),
    sampleKeepSlowerThanMs: get('SAMPLE_KEEP_SLOWER_THAN')
      ? parseDuration('SAMPLE_KEEP_SLOWER_THAN', get('SAMPLE_KEEP_SLOWER_THAN'))
      : 0,
  };
}

export function parseBoolean(name: string, value: string): boolean {
  const v = value.toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(v)) return true;
  if (['false', '0', 'no', 'off', ''].includes(v)) return false;
  throw new ConfigError(`${name} must be true or false, got "${value}"`);
}

function parseTlsUprobes(value: string): TlsUprobes {
  if (value.toLowerCase() === 'openssl') return 'openssl';
  try {
    return parseBoolean('TLS_UPROBES', value) ? 'auto' : 'off';
  } catch {
    throw new ConfigError(`TLS_UPROBES must be true, openssl or false, got "${value}"`);
  }
}

function parseInteger(name: string, value: string, min: number, max: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new ConfigError(`${name} must be an integer from ${min} to ${max}, got "${value}"`);
  }
  return n;
}

function parseChoice<T extends string>(name: string, value: string, choices: readonly T[]): T {
  const v = value.toLowerCase() as T;
  if (!choices.includes(v)) throw new ConfigError(`${name} must be one of ${choices.join(', ')}, got "${value}"`);
  return v;
}

/** "10" (seconds, as the original design read it), "500ms", "10s", "1m". */
export function parseDuration(name: string, value: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(value.toLowerCase());
  if (!match) throw new ConfigError(`${name} must be a duration like 10s, 500ms or 1m, got "${value}"`);
  const scale = match[2] === 'ms' ? 1 : match[2] === 'm' ? 60_000 : 1000;
  return Math.round(Number(match[1]) * scale);
}

function parseList(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

function parseUrl(name: string, value: string): string | undefined {
  if (!value) return undefined;
  try {
    const url = new URL(value);
    if (url.protocol === 'http:' || url.protocol === 'https:') return value;
  } catch {
    // reported below
  }
  throw new ConfigError(`${name} must be an http(s) URL such as http://127.0.0.1:8001, got "${value}"`);
}
