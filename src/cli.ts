#!/usr/bin/env -S node --max-semi-space-size=8
/**
 * kong-watcher: the command. Reads the environment, starts the agent, stops it cleanly on
 * SIGTERM/SIGINT (stop capture, flush what is pending within a deadline, exit 0).
 * `kong-watcher top` is the live view instead: a client of the running agent (src/top).
 */
import { ConfigError, loadConfig } from './config';
import { Logger } from './log';
import { helpMetrics, helpVariables } from './reference';

const SHUTDOWN_DEADLINE_MS = 5000;

function usage(): string {
  return `kong-watcher: every HTTP request a Kong Gateway serves and proxies, seen with eBPF from outside
the process, as JSON request logs, OpenTelemetry spans and RED metrics.

Usage: kong-watcher [--help] [--version]
       kong-watcher top [--once] [--url URL]    a live view of the running agent (top --help)

Runs as root, or with CAP_BPF, CAP_PERFMON, CAP_SYS_PTRACE and CAP_SYS_RESOURCE, on Linux with BTF
(/sys/kernel/btf/vmlinux). Finds Kong's nginx master and workers by itself and follows reloads.

${helpVariables()}

With no endpoint and no exporter set, nothing is exported: the request log and stats still run.

Metrics (OTLP name, kind, unit; the name Prometheus shows, scraped or through a collector):
${helpMetrics()}

Example:
  ENABLE_JSON_LOG=true OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317 kong-watcher
`;
}

async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'top') {
    // Loaded only here: the agent never needs the view, the view never needs the agent.
    const { runTop } = require('./top/main') as typeof import('./top/main');
    return runTop(argv.slice(1));
  }
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
  // Loaded here, not at the top: `kong-watcher top` starts without the OpenTelemetry SDK and gRPC.
  const { Agent } = require('./agent') as typeof import('./agent');
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
