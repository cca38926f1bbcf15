#!/usr/bin/env -S node --max-semi-space-size=8
/**
 * kong-watcher: the command. Reads the environment, starts the agent, stops it cleanly on
 * SIGTERM/SIGINT (stop capture, flush what is pending within a deadline, exit 0).
 */
import { Agent } from './agent';
import { ConfigError, VARIABLES, loadConfig } from './config';
import { Logger } from './log';

const SHUTDOWN_DEADLINE_MS = 5000;

function usage(): string {
  const width = Math.max(...VARIABLES.map((v) => v.name.length));
  const rows = VARIABLES.map((v) => `  ${v.name.padEnd(width)}  ${v.meaning} (default: ${v.default || 'unset'})`);
  return `kong-watcher: every HTTP request a Kong Gateway serves and proxies, seen with eBPF from outside
the process, as JSON request logs, OpenTelemetry spans and RED metrics.

Usage: kong-watcher [--help] [--version]

Runs as root, or with CAP_BPF, CAP_PERFMON, CAP_SYS_PTRACE and CAP_SYS_RESOURCE, on Linux with BTF
(/sys/kernel/btf/vmlinux). Finds Kong's nginx master and workers by itself and follows reloads.

Agent variables:
${rows.join('\n')}

OpenTelemetry variables (as the OpenTelemetry specification defines them):
  OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_{TRACES,METRICS}_ENDPOINT, OTEL_EXPORTER_OTLP_HEADERS,
  OTEL_EXPORTER_OTLP_TIMEOUT, OTEL_EXPORTER_OTLP_INSECURE, OTEL_EXPORTER_OTLP_CERTIFICATE,
  OTEL_EXPORTER_OTLP_COMPRESSION, OTEL_TRACES_EXPORTER / OTEL_METRICS_EXPORTER (otlp, console, none),
  OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG (default parentbased_always_on), OTEL_SERVICE_NAME
  (default kong), OTEL_RESOURCE_ATTRIBUTES, OTEL_METRIC_EXPORT_INTERVAL, OTEL_BSP_MAX_QUEUE_SIZE,
  OTEL_BSP_MAX_EXPORT_BATCH_SIZE, OTEL_BSP_SCHEDULE_DELAY, OTEL_BSP_EXPORT_TIMEOUT.
  Kubernetes (downward API): K8S_POD_NAME, K8S_NAMESPACE_NAME, K8S_NODE_NAME.
  With no endpoint and no exporter set, nothing is exported: the request log and stats still run.

Example:
  ENABLE_JSON_LOG=true OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317 kong-watcher
`;
}

async function main(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(usage());
    return 0;
  }
  if (argv.includes('--version')) {
    process.stdout.write(`${require('../../package.json').version}\n`);
    return 0;
  }
  const unknown = argv.filter((a) => a.startsWith('-'));
  if (unknown.length > 0) {
    process.stderr.write(`kong-watcher: unknown option ${unknown[0]} (try --help)\n`);
    return 2;
  }

  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`kong-watcher: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const log = new Logger({ level: config.logLevel, json: config.jsonLog });
  const agent = new Agent(config, log);
  try {
    await agent.start();
  } catch (err) {
    log.error('kong-watcher could not start', { error: (err as Error).message });
    await agent.stop(SHUTDOWN_DEADLINE_MS).catch(() => undefined);
    log.flush();
    return 1;
  }

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      log.info('stopping', { signal });
      agent
        .stop(SHUTDOWN_DEADLINE_MS)
        .then(() => resolve(0))
        .catch((err: Error) => {
          log.error('unclean stop', { error: err.stack ?? err.message });
          log.flush();
          resolve(1);
        });
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}

main(process.argv.slice(2)).then(
  (code) => {
    process.stdout.write('', () => process.exit(code));
  },
  (err: Error) => {
    process.stderr.write(`kong-watcher: ${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
