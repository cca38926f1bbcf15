/**
 * Wires the stages together, one way:
 *
 *   discovery -> native capture (kernel records -> finished exchanges, on the drain thread)
 *             -> decode (src/capture) -> enrich (src/enrich)
 *             -> outputs: request log (src/output), metrics + spans (src/otel) -> OTLP,
 *                the live view's recent requests (src/output/live)
 *
 * and the stats line and the live view's snapshot over the same counts. Owns start-up order and
 * shutdown.
 */
import { readFileSync } from 'node:fs';
import type http from 'node:http';
import { decodeBatch, type FrameSink, type ProcFrame } from './capture/batch-decoder';
import type { Exchange } from './capture/exchange';
import {
  createCapture as createNativeCapture,
  type CaptureOptions,
  type CaptureStats,
  type NativeCapture,
  type UprobeSet,
} from './capture/native';
import { ProcEvent } from './capture/records';
import { createClock, type Clock } from './clock';
import type { AgentConfig } from './config';
import { KongDiscovery, type KongProcess } from './discovery';
import { isCandidateComm } from './discovery/classify';
import type { EnrichedExchange } from './enrich/enriched';
import { Enricher, type EnrichedSink } from './enrich/enricher';
import { KongAdminRoutes } from './enrich/kong/admin-api';
import { PodTable } from './enrich/pods';
import { createRedactor } from './enrich/redact';
import { Sampler } from './enrich/sampler';
import { startHealthServer } from './health';
import type { Logger } from './log';
import { LiveOutput, startLiveServer } from './output/live';
import type { AgentCounters } from './output/live/window';
import type { AgentNow } from './output/live/snapshot';
import { RequestLog } from './output/request-log';
import { StatsLine } from './output/stats';
import {
  createTelemetry,
  type RequestTotals,
  type SelfStats,
  type Telemetry,
  type TelemetryOverrides,
  type TelemetryStats,
} from './otel';

/** The native assembler's bounds: memory stays bounded whatever the traffic does. */
const ASSEMBLER_BOUNDS = {
  maxConnections: 65536,
  maxPendingPerConnection: 128,
  pendingTimeoutNs: 300e9,
  idleConnectionNs: 900e9,
} as const;
/** How long stop() waits for the drain thread's last batches. */
const CAPTURE_STOP_MS = 2000;
const HOUSEKEEPING_MS = 1000;
/** The live view's sampling period: its rates, percentiles and sparklines are per second. */
const LIVE_TICK_MS = 1000;

/** Replacements for tests: everything else comes from the config. */
export interface AgentDeps {
  createCapture?: (options: CaptureOptions) => NativeCapture;
  env?: Record<string, string | undefined>;
  clock?: Clock;
  /** exporters replaced (a benchmark's A/B) */
  telemetry?: Pick<TelemetryOverrides, 'spanExporter'>;
}

export class Agent {
  private capture?: NativeCapture;
  private discovery?: KongDiscovery;
  private adminRoutes?: KongAdminRoutes;
  private telemetry?: Telemetry;
  private enricher?: Enricher;
  private pods?: PodTable;
  private health?: http.Server;
  private live?: LiveOutput;
  private liveServer?: http.Server;
  private timers: NodeJS.Timeout[] = [];
  private readonly clock: Clock;
  private readonly statsLine = new StatsLine();
  private readonly monitored = new Map<number, KongProcess>();
  private readonly frames: FrameSink;
  private attached = false;
  private decodeErrors = 0;

  constructor(
    private readonly config: AgentConfig,
    private readonly log: Logger,
    private readonly deps: AgentDeps = {},
  ) {
    this.clock = deps.clock ?? createClock();
    // Made once: the decoder calls these per frame.
    this.frames = {
      exchange: (ex: Exchange) => this.enricher?.push(ex),
      proc: (frame: ProcFrame) => this.onProc(frame),
    };
  }

  async start(): Promise<void> {
    const { config, log } = this;
    if (config.kongAdminUrl) {
      this.adminRoutes = new KongAdminRoutes({ url: config.kongAdminUrl, token: config.kongAdminToken }, log);
      void this.adminRoutes.start();
    }
    // A sidecar's pod is its resource (downward API); a node-wide agent labels each Kong's pod.
    this.pods = config.scope === 'host' ? new PodTable() : undefined;
    const telemetry = createTelemetry(this.deps.env ?? process.env, this.clock, log, {
      ...this.deps.telemetry,
      selfStats: () => this.selfStats(),
      activeRequests: () => this.captureStats()?.assembler.activeServer,
    });
    this.telemetry = telemetry;
    const outputs: EnrichedSink[] = [telemetry];
    if (config.logRequests) outputs.push(new RequestLog(log, this.clock));
    if (config.topPort > 0) {
      this.live = new LiveOutput({
        series: telemetry.httpSeries,
        clock: this.clock,
        counters: () => this.liveCounters(),
        now: () => this.liveNow(),
      });
      outputs.push(this.live.recent);
    }
    this.enricher = new Enricher(new Outputs(outputs, log), {
      redactor: createRedactor(config.redactQueryKeys),
      routes: this.adminRoutes?.table,
      pods: this.pods,
      sampler: telemetry.tracing
        ? new Sampler(telemetry.config.sampler, telemetry.config.samplerRatio, {
            keepErrors: config.sampleKeepErrors,
            keepSlowerThanNs: config.sampleKeepSlowerThanMs * 1e6,
          })
        : undefined,
    });

    const capture = (this.deps.createCapture ?? createNativeCapture)({
      ringBufferBytes: config.ringBufferBytes,
      captureBytes: config.captureBytes,
      wakeupBytes: Math.min(256 * 1024, config.ringBufferBytes / 4),
      pollIntervalMs: 10,
      dataPath: config.captureMode,
      execComm: 'nginx',
      ignoredLocalPorts: ignoredPorts(config),
      ...ASSEMBLER_BOUNDS,
      onBatch: (batch) => this.onBatch(batch),
      onLog: (level, message) => log.log(level, message.trimEnd()),
    });
    this.capture = capture;
    capture.start();
    this.attached = true;
    log.info('BPF programs attached', { capture_mode: config.captureMode, ringbuf_bytes: config.ringBufferBytes });

    this.discovery = new KongDiscovery({
      hostProc: config.hostProc,
      processName: config.processName,
      prefix: config.kongPrefix,
      scope: config.scope,
    });
    this.discovery.on('add', (proc) => this.addProcess(proc));
    this.discovery.on('remove', (pid) => this.removeProcess(pid));
    this.discovery.start();
    if (this.monitored.size === 0) {
      log.warn('no Kong process found yet; waiting for one', {
        process_name: config.processName,
        prefix: config.kongPrefix,
        scope: config.scope,
        host_proc: config.hostProc,
      });
    }

    if (config.healthPort > 0) {
      this.health = await startHealthServer(config.healthAddress, config.healthPort, {
        // Live while the event loop answers: a stuck agent fails the probe by not answering.
        live: () => true,
        ready: () => this.attached && this.monitored.size > 0,
        details: () => ({ kong_processes: this.monitored.size, attached: this.attached }),
      });
    }

    if (this.live) await this.startLive(this.live);

    if (this.pods) {
      const pods = this.pods;
      this.timers.push(setInterval(() => pods.expire(), HOUSEKEEPING_MS));
    }
    if (config.statsIntervalMs > 0) {
      this.timers.push(setInterval(() => this.logStats(), config.statsIntervalMs));
    }
    for (const t of this.timers) t.unref();
  }

  /**
   * Stops capture first and waits for its last batches (what was in flight is reported with
   * agent_stopped), then flushes the outputs within the deadline.
   */
  async stop(deadlineMs: number): Promise<void> {
    const until = Date.now() + deadlineMs;
    const left = (): number => Math.max(1, until - Date.now());
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    this.discovery?.stop();
    this.adminRoutes?.stop();
    const capture = this.capture;
    const wasAttached = this.attached;
    if (capture) {
      await new Promise<void>((resolve) => {
        const guard = setTimeout(
          () => {
            this.log.warn('capture did not confirm its stop in time; flushing without its last batches');
            resolve();
          },
          Math.min(CAPTURE_STOP_MS, deadlineMs / 2),
        );
        capture.stop(() => {
          clearTimeout(guard);
          resolve();
        });
      });
    }
    this.enricher?.endBatch();
    this.attached = false;
    await new Promise<void>((resolve) => (this.health ? this.health.close(() => resolve()) : resolve()));
    this.liveServer?.closeAllConnections();
    await new Promise<void>((resolve) => (this.liveServer ? this.liveServer.close(() => resolve()) : resolve()));
    // What export cannot send within the deadline is counted as dropped by the shutdown itself.
    await this.telemetry?.shutdown(left());
    // The last line comes after the flush, so that it tells the truth about what was lost.
    if (this.config.statsIntervalMs > 0 && wasAttached) this.logStats();
    this.capture = undefined;
    this.clock.stop();
    this.log.flush();
  }

  /** Span and metric figures so far (benchmarks read them; the stats line prints them). */
  telemetryStats(): TelemetryStats | undefined {
    return this.telemetry?.stats();
  }

  /** Exchanges counted so far, as the stats line counts them. */
  requestTotals(): RequestTotals | undefined {
    return this.telemetry?.totals();
  }

  /**
   * The live view is a debugging aid: when its port is taken (a second agent on the node), the
   * agent runs on without it and says so.
   */
  private async startLive(live: LiveOutput): Promise<void> {
    const { topAddress, topPort } = this.config;
    try {
      this.liveServer = await startLiveServer(topAddress, topPort, () => live.snapshot());
    } catch (err) {
      this.log.warn('the live view endpoint could not start; kong-watcher top cannot attach', {
        address: topAddress,
        port: topPort,
        error: (err as Error).message,
      });
      return;
    }
    if (!isLoopback(topAddress)) {
      this.log.warn('the live view endpoint is reachable from the network: it shows routes and request paths', {
        address: topAddress,
        port: topPort,
      });
    }
    this.timers.push(setInterval(() => live.tick(), LIVE_TICK_MS));
  }

  private liveCounters(): AgentCounters {
    const capture = this.captureStats();
    const spans = this.telemetry?.stats();
    const cpu = process.cpuUsage();
    return {
      eventsReceived: capture?.assembler.records ?? 0,
      eventsLost: capture?.lost ?? 0,
      spansDropped: spans?.spansDropped ?? 0,
      exportFailures: spans?.exportFailures ?? 0,
      cpuMicros: cpu.user + cpu.system,
    };
  }

  private liveNow(): AgentNow {
    const capture = this.captureStats();
    const spans = this.telemetry?.stats();
    let inFlight = 0;
    for (const n of capture?.assembler.activeServer ?? []) inFlight += n;
    return {
      scope: this.config.scope,
      kongProcesses: this.monitored.size,
      inFlight,
      ringFill: capture && capture.ringSizeBytes > 0 ? capture.ringUsedBytes / capture.ringSizeBytes : 0,
      rssBytes: process.memoryUsage.rss(),
      tracesExporter: spans?.tracesExporter ?? 'none',
      metricsExporter: spans?.metricsExporter ?? 'none',
    };
  }

  private onBatch(batch: Buffer): void {
    const enricher = this.enricher;
    if (!enricher) return;
    try {
      this.decodeErrors += decodeBatch(batch, this.clock.baseNs, this.frames).malformed;
    } catch (err) {
      // A bug in a stage must not stop capture: count it, say it once per batch.
      this.decodeErrors++;
      this.log.error('could not process a batch of exchanges', { error: (err as Error).stack });
    }
    enricher.endBatch();
  }

  /**
   * The kernel's process events: an exec (of nginx) may be a new Kong master, a fork of a
   * followed process is already followed in the kernel but needs its uprobes and pod, an exit
   * ends a process at once. A followed process that execs something else (a shell a plugin
   * started) is not Kong any more: the kernel stops following it.
   */
  private onProc(frame: ProcFrame): void {
    const discovery = this.discovery;
    if (!discovery) return;
    if (frame.event === ProcEvent.Exit) {
      discovery.exited(frame.pid);
    } else if (frame.event === ProcEvent.Fork) {
      discovery.check(frame.pid);
    } else if (frame.event === ProcEvent.Exec) {
      // A new master: following it now means its workers are followed from their fork.
      discovery.check(frame.pid, Date.now(), true);
      if (!this.monitored.has(frame.pid) && !isCandidateComm(frame.comm, this.config.processName)) {
        this.forgetInKernel(frame.pid);
      }
    }
  }

  private forgetInKernel(pid: number): void {
    try {
      this.capture?.removeProcess(pid);
    } catch (err) {
      this.log.debug('could not stop following a process', { pid, error: (err as Error).message });
    }
  }

  private addProcess(proc: KongProcess): void {
    const capture = this.capture;
    if (!capture) return;
    try {
      capture.addProcess(proc.pid);
    } catch (err) {
      this.log.warn('could not follow a Kong process', { pid: proc.pid, error: (err as Error).message });
      return;
    }
    this.monitored.set(proc.pid, proc);
    this.pods?.set(proc.pid, proc.pod);
    this.log.info('monitoring Kong process', {
      pid: proc.pid,
      role: proc.role,
      master_pid: proc.masterPid,
      prefix: proc.prefix,
      binary: proc.exePath,
      pod: proc.pod && `${proc.pod.namespace ?? '?'}/${proc.pod.name ?? proc.pod.uid}`,
    });
    const libc = this.config.captureMode === 'libc';
    const lua = this.config.luaUprobes;
    const tls = this.config.tlsUprobes !== 'off';
    const set = { lua, libc, tls, tlsOpenSsl: this.config.tlsUprobes === 'openssl' };
    if ((lua || libc || tls) && proc.role === 'worker') this.attachUprobes(capture, proc, set);
  }

  private attachUprobes(capture: NativeCapture, proc: KongProcess, set: UprobeSet): void {
    const { hostProc } = this.config;
    // With neither nginx's TLS recv/send nor OpenSSL's SSL_read, SSL_write and SSL_set_fd (which
    // nginx calls; the _ex forms are for other callers), a worker's TLS requests go unreported.
    const tlsLost = 'requests on TLS connections of this worker are not reported';
    try {
      const result = capture.attachUprobes(
        proc.pid,
        proc.binaryPath,
        set,
        set.libc ? mappedPathOf(hostProc, proc.pid, /\/libc[.-][^/]*\.so/) : undefined,
        // OpenSSL linked into the binary when no libssl is mapped.
        set.tls ? (mappedPathOf(hostProc, proc.pid, /\/libssl\.so/) ?? proc.binaryPath) : undefined,
      );
      const viaNginx = result.attached.some((a) => a.startsWith('ngx_ssl_recv'));
      this.log.info('uprobes attached', {
        pid: proc.pid,
        attached: result.attached.length,
        missing: result.missing,
        ...(set.tls ? { tls: viaNginx ? 'ngx_ssl_recv/ngx_ssl_write' : 'OpenSSL' } : {}),
      });
      const tlsMissing = viaNginx ? [] : result.missing.filter((m) => /^SSL_(set_fd|read|write)[ :]/.test(m));
      if (tlsMissing.length > 0)
        this.log.warn(`TLS uprobes incomplete: ${tlsLost}`, { pid: proc.pid, missing: tlsMissing });
    } catch (err) {
      this.log.warn(`uprobes not attached; syscall capture continues${set.tls ? ` (${tlsLost})` : ''}`, {
        pid: proc.pid,
        error: (err as Error).message,
      });
    }
  }

  private removeProcess(pid: number): void {
    if (!this.monitored.delete(pid)) return;
    this.pods?.release(pid);
    try {
      this.capture?.removeProcess(pid);
      this.capture?.detachUprobes(pid);
    } catch (err) {
      this.log.debug('detach of an exited process', { pid, error: (err as Error).message });
    }
    this.log.info('Kong process gone', { pid });
  }

  /** The capture's counters; undefined before start, and if the addon cannot answer (stopped). */
  private captureStats(): CaptureStats | undefined {
    try {
      return this.capture?.stats();
    } catch {
      return undefined;
    }
  }

  private selfStats(): SelfStats {
    const capture = this.captureStats();
    const a = capture?.assembler;
    return {
      eventsReceived: a?.records ?? 0,
      eventsLost: capture?.lost ?? 0,
      ringbufFill: capture && capture.ringSizeBytes > 0 ? capture.ringUsedBytes / capture.ringSizeBytes : 0,
      processesMonitored: this.monitored.size,
      decodeErrors: this.decodeErrors + (a?.malformedRecords ?? 0),
      connections: a?.connections ?? 0,
      evictedConnections: a?.evicted ?? 0,
      protocolErrors: a?.protocolErrors ?? 0,
      droppedRequests: a?.droppedRequests ?? 0,
      unmatchedAttempts: a?.unmatchedAttempts ?? 0,
    };
  }

  private logStats(): void {
    const telemetry = this.telemetry;
    if (!telemetry) return;
    const spans = telemetry.stats();
    this.log.info(
      'stats',
      this.statsLine.format({
        totals: telemetry.totals(),
        capture: this.captureStats(),
        decodeErrors: this.decodeErrors,
        kongProcesses: this.monitored.size,
        spansExported: spans.spansExported,
        spansDropped: spans.spansDropped,
        exportFailures: spans.exportFailures,
        rssBytes: process.memoryUsage.rss(),
        heapUsedBytes: process.memoryUsage().heapUsed,
      }),
    );
  }
}

/** Every output gets every exchange; one that throws costs its own output only, said once. */
class Outputs implements EnrichedSink {
  private failed = false;

  constructor(
    private readonly outputs: EnrichedSink[],
    private readonly log: Logger,
  ) {}

  exchange(e: EnrichedExchange): void {
    const outputs = this.outputs;
    for (let i = 0; i < outputs.length; i++) {
      try {
        outputs[i].exchange(e);
      } catch (err) {
        if (this.failed) continue;
        this.failed = true;
        this.log.error('an output failed on an exchange (said once)', { error: (err as Error).stack });
      }
    }
  }
}

/** Kong's Admin API is not proxy traffic, and the agent's own route polling must not count. */
function ignoredPorts(config: AgentConfig): number[] {
  const ports = new Set(config.ignorePorts);
  if (config.kongAdminUrl) {
    const url = new URL(config.kongAdminUrl);
    ports.add(Number(url.port) || (url.protocol === 'https:' ? 443 : 80));
  }
  return [...ports];
}

function isLoopback(address: string): boolean {
  return address === 'localhost' || address === '::1' || address.startsWith('127.');
}

/** A library a process really maps (libc, libssl), reachable from the agent through its root. */
function mappedPathOf(hostProc: string, pid: number, library: RegExp): string | undefined {
  try {
    const maps = readFileSync(`${hostProc}/${pid}/maps`, 'utf8');
    const line = maps.split('\n').find((l) => library.test(l));
    const path = line?.slice(line.indexOf('/'));
    return path ? `${hostProc}/${pid}/root${path}` : undefined;
  } catch {
    return undefined;
  }
}
