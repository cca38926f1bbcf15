/**
 * Wires the stages together, one way: discovery -> native capture -> decode -> request
 * assembly -> outputs (request log, stats, OpenTelemetry). Owns start-up order and shutdown.
 */
import type http from 'node:http';
import { createCapture, type NativeCapture } from './capture/native';
import { decodeBatch } from './capture/decoder';
import { createClock, type Clock } from './clock';
import type { AgentConfig } from './config';
import { KongDiscovery, type KongProcess } from './discovery';
import { KongAdminRoutes } from './kong/admin-api';
import { startHealthServer } from './health';
import type { Logger } from './log';
import { RequestLog } from './output/request-log';
import { RequestStats } from './output/stats';
import { createTelemetry, type Telemetry } from './otel';
import { RequestPipeline } from './requests/pipeline';
import { createRedactor } from './requests/redact';
import type { ExchangeSink, HttpExchange } from './requests/types';

/** Sockets idle longer than this with an unfinished exchange are reported and forgotten. */
const IDLE_FLUSH_MS = 1000;

export class Agent {
  private capture?: NativeCapture;
  private discovery?: KongDiscovery;
  private adminRoutes?: KongAdminRoutes;
  private telemetry?: Telemetry;
  private health?: http.Server;
  private timers: NodeJS.Timeout[] = [];
  private readonly clock: Clock = createClock();
  private readonly stats = new RequestStats();
  private pipeline?: RequestPipeline;
  private readonly monitored = new Map<number, KongProcess>();
  private attached = false;
  private eventsReceived = 0;
  private decodeErrors = 0;

  constructor(
    private readonly config: AgentConfig,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    const { config, log } = this;
    const redactQuery = createRedactor(config.redactQueryKeys);
    if (config.kongAdminUrl) {
      this.adminRoutes = new KongAdminRoutes({ url: config.kongAdminUrl, token: config.kongAdminToken }, log);
      void this.adminRoutes.start();
    }
    const table = this.adminRoutes?.table;
    this.telemetry = createTelemetry(process.env, this.clock, log, {
      redactQuery,
      routes: table && ((ex) => table.resolve(ex)),
      // A sidecar's pod is its resource (downward API); a node-wide agent labels each Kong's pod.
      pods: config.scope === 'host' ? (pid) => this.monitored.get(pid)?.pod : undefined,
    });
    const sinks: ExchangeSink[] = [this.stats, this.telemetry];
    if (config.logRequests) sinks.push(new RequestLog(log, this.clock, redactQuery));
    this.pipeline = new RequestPipeline(fanOut(sinks), { ignoredLocalPorts: ignoredPorts(config) });

    this.capture = createCapture({
      ringBufferBytes: config.ringBufferBytes,
      captureBytes: config.captureBytes,
      wakeupBytes: Math.min(256 * 1024, config.ringBufferBytes / 4),
      pollIntervalMs: 10,
      dataPath: config.captureMode,
      onBatch: (batch, count) => this.onBatch(batch, count),
      onLog: (level, message) => log.log(level, `libbpf: ${message.trimEnd()}`),
    });
    this.capture.start();
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

    this.timers.push(setInterval(() => this.pipeline?.flushIdle(this.clock.nowRelNs()), IDLE_FLUSH_MS));
    this.timers.push(setInterval(() => this.telemetry?.recordAgentStats(this.agentStats()), 1000));
    if (config.statsIntervalMs > 0) {
      this.timers.push(setInterval(() => this.logStats(), config.statsIntervalMs));
    }
    for (const t of this.timers) t.unref();
  }

  /** Stops capture first so nothing new arrives, then flushes outputs within the deadline. */
  async stop(deadlineMs: number): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    this.discovery?.stop();
    this.adminRoutes?.stop();
    if (this.capture) {
      this.capture.stop();
      // The drain thread's last batches are delivered on the next turns of the event loop.
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    this.pipeline?.flushAll(this.clock.nowRelNs());
    if (this.config.statsIntervalMs > 0) this.logStats();
    this.capture = undefined;
    await new Promise<void>((resolve) => (this.health ? this.health.close(() => resolve()) : resolve()));
    await this.telemetry?.shutdown(deadlineMs);
    this.log.flush();
  }

  private onBatch(batch: Buffer, count: number): void {
    const pipeline = this.pipeline;
    if (!pipeline) return;
    this.eventsReceived += count;
    try {
      const result = decodeBatch(batch, this.clock.baseNs, (record) => pipeline.handle(record));
      this.decodeErrors += result.malformed;
    } catch (err) {
      // A bug in a stage must not stop capture: count it, say it once per batch.
      this.decodeErrors++;
      this.log.error('could not process a batch of events', { error: (err as Error).stack });
    }
  }

  private addProcess(proc: KongProcess): void {
    const capture = this.capture;
    if (!capture) return;
    capture.addProcess(proc.pid, proc.role === 'master' ? 1 : 2);
    this.monitored.set(proc.pid, proc);
    this.log.info('monitoring Kong process', {
      pid: proc.pid,
      role: proc.role,
      master_pid: proc.masterPid,
      prefix: proc.prefix,
      binary: proc.exePath,
      pod: proc.pod && `${proc.pod.namespace ?? '?'}/${proc.pod.name ?? proc.pod.uid}`,
    });
    const wantsUprobes = this.config.nginxUprobes || this.config.luaUprobes || this.config.captureMode === 'libc';
    if (wantsUprobes && proc.role === 'worker') this.attachUprobes(capture, proc);
  }

  private attachUprobes(capture: NativeCapture, proc: KongProcess): void {
    try {
      const result = capture.attachUprobes(
        proc.pid,
        proc.binaryPath,
        { nginx: this.config.nginxUprobes, lua: this.config.luaUprobes, libc: this.config.captureMode === 'libc' },
        this.config.captureMode === 'libc' ? libcPathOf(this.config.hostProc, proc.pid) : undefined,
      );
      this.log.info('uprobes attached', { pid: proc.pid, attached: result.attached.length, missing: result.missing });
    } catch (err) {
      this.log.warn('uprobes not attached; syscall capture continues', {
        pid: proc.pid,
        error: (err as Error).message,
      });
    }
  }

  private removeProcess(pid: number): void {
    if (!this.monitored.delete(pid)) return;
    try {
      this.capture?.removeProcess(pid);
      this.capture?.detachUprobes(pid);
    } catch (err) {
      this.log.debug('detach of an exited process', { pid, error: (err as Error).message });
    }
    this.log.info('Kong process gone', { pid });
  }

  private agentStats() {
    const capture = this.capture?.stats();
    const telemetry = this.telemetry?.stats();
    return {
      eventsReceived: this.eventsReceived,
      eventsLost: capture?.lost ?? 0,
      ringbufFill: capture && capture.ringSizeBytes > 0 ? capture.ringUsedBytes / capture.ringSizeBytes : 0,
      processesMonitored: this.monitored.size,
      spansExported: telemetry?.spansExported ?? 0,
      spansDropped: telemetry?.spansDropped ?? 0,
      exportFailures: telemetry?.exportFailures ?? 0,
    };
  }

  private logStats(): void {
    const a = this.agentStats();
    const p = this.pipeline?.stats();
    this.log.info(
      'stats',
      this.stats.snapshot({
        events: a.eventsReceived,
        lost_events: a.eventsLost,
        ringbuf_fill: Math.round(a.ringbufFill * 1000) / 1000,
        decode_errors: this.decodeErrors,
        connections: p?.connections,
        kong_processes: a.processesMonitored,
        rss_mib: Math.round(process.memoryUsage.rss() / 1048576),
        heap_mib: Math.round(process.memoryUsage().heapUsed / 1048576),
        spans_exported: a.spansExported,
        spans_dropped: a.spansDropped,
        export_failures: a.exportFailures,
      }),
    );
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

function fanOut(sinks: ExchangeSink[]): ExchangeSink {
  const heads = sinks.filter((s) => s.onRequestHead);
  return {
    onRequestHead(ex: HttpExchange) {
      for (const s of heads) s.onRequestHead!(ex);
    },
    onExchange(ex: HttpExchange) {
      for (const s of sinks) s.onExchange(ex);
    },
  };
}

/** The libc a process really maps, reachable from the agent through its root. */
function libcPathOf(hostProc: string, pid: number): string | undefined {
  try {
    const maps = require('node:fs').readFileSync(`${hostProc}/${pid}/maps`, 'utf8') as string;
    const line = maps.split('\n').find((l) => /\/libc[.-][^/]*\.so/.test(l));
    const path = line?.slice(line.indexOf('/'));
    return path ? `${hostProc}/${pid}/root${path}` : undefined;
  } catch {
    return undefined;
  }
}
