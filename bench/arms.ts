/**
 * The arms compared in every round. "off" runs no sidecar; "noop" runs the control process;
 * every other arm runs the real agent with the environment below (src/config.ts and
 * src/otel/config.ts read it). Metrics go to the loopback receiver in every agent arm, spans
 * only where the arm says so. HTTP/2 arms send the load to the gateway's h2c listener with h2load
 * and pair with "h2-off" instead of "off"; TLS arms send it to the TLS listener (wrk over https)
 * and pair with "tls-off".
 */

export type ArmKind = 'off' | 'noop' | 'agent';

export interface Arm {
  name: string;
  kind: ArmKind;
  description: string;
  env: Record<string, string>;
  /** spans exported to the receiver: agent CPU target is 8 µs/request, else 2 */
  spans: boolean;
  /** run the agent in a cgroup limited to this many CPUs (the sidecar's limit) */
  cpuLimit?: number;
  /** the load goes to the gateway's h2c listener: h2load, HTTP/2 with prior knowledge */
  h2?: boolean;
  /** the load goes to Kong's TLS listener: wrk over https (HTTP/1.1, no ALPN) */
  tls?: boolean;
  /** the arm whose run of the same round "added" figures are paired with (default "off") */
  baseline?: string;
  /** another agent build to run instead of this one (BENCH_EARLIER_CMD: old against new, interleaved) */
  command?: string[];
}

/** The sidecar manifests' CPU limit (200m). */
export const SIDECAR_CPU_LIMIT = 0.2;

/**
 * `endpoint`: the receiver, http://127.0.0.1:<port>; `earlierCommand`: an earlier build's agent
 * command, which adds its "default" and "default+spans" arms as "earlier" and "earlier+spans".
 */
export function arms(endpoint: string, earlierCommand?: string[]): Arm[] {
  const common = {
    ENABLE_JSON_LOG: 'true',
    LOG_REQUESTS: 'false',
    HEALTH_PORT: '0',
    STATS_INTERVAL: '1s',
    LOG_LEVEL: 'info',
    OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
    OTEL_METRICS_EXPORTER: 'otlp',
    OTEL_METRIC_EXPORT_INTERVAL: '2000',
  };
  const metricsOnly = { ...common, OTEL_TRACES_EXPORTER: 'none' };
  return [
    { name: 'off', kind: 'off', description: 'no sidecar', env: {}, spans: false },
    {
      name: 'noop',
      kind: 'noop',
      description: 'no-op control: a node process that attaches nothing',
      env: {},
      spans: false,
    },
    {
      name: 'default',
      kind: 'agent',
      description: 'syscall tracepoints, metrics only, no request log',
      env: { ...metricsOnly, CAPTURE_MODE: 'syscalls' },
      spans: false,
    },
    {
      name: 'default 16MiB ring',
      kind: 'agent',
      description:
        "default with a 16 MiB ring buffer (0.1.0's default) instead of 8: more headroom, more cold cache lines per record",
      env: { ...metricsOnly, CAPTURE_MODE: 'syscalls', RINGBUF_SIZE: String(16 * 1024 * 1024) },
      spans: false,
    },
    {
      name: 'default+spans',
      kind: 'agent',
      description: 'syscall tracepoints, every request exported as spans over OTLP gRPC',
      env: { ...common, CAPTURE_MODE: 'syscalls', OTEL_TRACES_EXPORTER: 'otlp', OTEL_TRACES_SAMPLER: 'always_on' },
      spans: true,
    },
    {
      name: 'libc',
      kind: 'agent',
      description: 'libc uprobes instead of syscall tracepoints, metrics only',
      env: { ...metricsOnly, CAPTURE_MODE: 'libc' },
      spans: false,
    },
    {
      name: 'lua',
      kind: 'agent',
      description: 'default + Lua phase uprobes, metrics only',
      env: { ...metricsOnly, CAPTURE_MODE: 'syscalls', LUA_UPROBES: 'true' },
      spans: false,
    },
    {
      name: 'h2-off',
      kind: 'off',
      description: 'no sidecar, the load over HTTP/2 (h2load on the h2c listener, 10 streams per connection)',
      env: {},
      spans: false,
      h2: true,
    },
    {
      name: 'h2',
      kind: 'agent',
      description:
        'default, the load over HTTP/2 (h2c): frames, HPACK and streams in the native assembler, metrics only',
      env: { ...metricsOnly, CAPTURE_MODE: 'syscalls' },
      spans: false,
      h2: true,
      baseline: 'h2-off',
    },
    {
      name: 'tls-off',
      kind: 'off',
      description: "no sidecar, the load over TLS (wrk https, HTTP/1.1 on Kong's TLS listener)",
      env: {},
      spans: false,
      tls: true,
    },
    {
      name: 'tls',
      kind: 'agent',
      description:
        "default (syscall tracepoints + TLS uprobes on nginx's ngx_ssl_recv/ngx_ssl_write), the load over TLS, metrics only",
      env: { ...metricsOnly, CAPTURE_MODE: 'syscalls' },
      spans: false,
      tls: true,
      baseline: 'tls-off',
    },
    {
      name: 'tls-openssl',
      kind: 'agent',
      description: "TLS_UPROBES=openssl (OpenSSL's SSL_read/SSL_write instead), the load over TLS, metrics only",
      env: { ...metricsOnly, CAPTURE_MODE: 'syscalls', TLS_UPROBES: 'openssl' },
      spans: false,
      tls: true,
      baseline: 'tls-off',
    },
    {
      name: 'tls-nouprobes',
      kind: 'agent',
      description: 'TLS_UPROBES=false, the load over TLS: the tracepoints alone, which see no TLS request',
      env: { ...metricsOnly, CAPTURE_MODE: 'syscalls', TLS_UPROBES: 'false' },
      spans: false,
      tls: true,
      baseline: 'tls-off',
    },
    {
      name: 'default@200m',
      kind: 'agent',
      description: `default, with the agent in a cgroup limited to ${SIDECAR_CPU_LIMIT} CPU (the sidecar's limit)`,
      env: { ...metricsOnly, CAPTURE_MODE: 'syscalls' },
      spans: false,
      cpuLimit: SIDECAR_CPU_LIMIT,
    },
    ...(earlierCommand === undefined ? [] : earlierArms(metricsOnly, common, earlierCommand)),
  ];
}

/** The earlier build's default arms; TLS_UPROBES=false: it has none, so the run waits for no uprobes line. */
function earlierArms(metricsOnly: Record<string, string>, common: Record<string, string>, command: string[]): Arm[] {
  const old = { CAPTURE_MODE: 'syscalls', TLS_UPROBES: 'false' };
  return [
    {
      name: 'earlier',
      kind: 'agent',
      description: `the earlier build (${command.join(' ')}), metrics only`,
      env: { ...metricsOnly, ...old },
      spans: false,
      command,
    },
    {
      name: 'earlier+spans',
      kind: 'agent',
      description: 'the earlier build, every request exported as spans over OTLP gRPC',
      env: { ...common, ...old, OTEL_TRACES_EXPORTER: 'otlp', OTEL_TRACES_SAMPLER: 'always_on' },
      spans: true,
      command,
    },
  ];
}
