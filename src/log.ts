/**
 * The agent's one logger: text or JSON lines on stdout (ENABLE_JSON_LOG), filtered by LOG_LEVEL.
 *
 * Lines are buffered and written once per turn of the event loop: at tens of thousands of
 * requests per second a write(2) per line would cost more than the capture itself.
 */

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type Fields = Record<string, unknown>;

const LEVEL_RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };
const FLUSH_BYTES = 64 * 1024;

export function parseLogLevel(value: string | undefined, fallback: LogLevel = 'info'): LogLevel {
  const v = (value ?? '').trim().toLowerCase();
  if (v === 'warning') return 'warn';
  return v in LEVEL_RANK ? (v as LogLevel) : fallback;
}

export interface LogOptions {
  level: LogLevel;
  json: boolean;
  /** where lines go; stdout by default (tests inject a collector) */
  write?: (chunk: string) => void;
  /** wall-clock now as RFC 3339; injectable for tests */
  now?: () => string;
}

export class Logger {
  private readonly rank: number;
  private readonly write: (chunk: string) => void;
  private readonly now: () => string;
  private pending = '';
  private flushScheduled = false;

  constructor(private readonly options: LogOptions) {
    this.rank = LEVEL_RANK[options.level];
    this.write = options.write ?? ((chunk) => process.stdout.write(chunk));
    this.now = options.now ?? (() => new Date().toISOString());
  }

  get json(): boolean {
    return this.options.json;
  }

  enabled(level: LogLevel): boolean {
    return LEVEL_RANK[level] >= this.rank;
  }

  debug(msg: string, fields?: Fields): void {
    this.log('debug', msg, fields);
  }
  info(msg: string, fields?: Fields): void {
    this.log('info', msg, fields);
  }
  warn(msg: string, fields?: Fields): void {
    this.log('warn', msg, fields);
  }
  error(msg: string, fields?: Fields): void {
    this.log('error', msg, fields);
  }

  /** One record; `timestamp` in fields overrides the logger's clock (request lines carry their own). */
  log(level: LogLevel, msg: string, fields?: Fields): void {
    if (LEVEL_RANK[level] < this.rank) return;
    const timestamp = (fields?.timestamp as string | undefined) ?? this.now();
    this.append(this.options.json ? jsonLine(level, timestamp, msg, fields) : textLine(level, timestamp, msg, fields));
  }

  /**
   * A record the caller formatted itself (one line, newline included), for the request log: its
   * JSON is written field by field rather than through an object per line.
   */
  writeLine(level: LogLevel, line: string): void {
    if (LEVEL_RANK[level] >= this.rank) this.append(line);
  }

  /** Writes everything buffered now (shutdown, fatal errors). */
  flush(): void {
    if (this.pending.length === 0) return;
    const chunk = this.pending;
    this.pending = '';
    try {
      this.write(chunk);
    } catch {
      // stdout closed (EPIPE): nothing useful left to do with log lines
    }
  }

  private append(line: string): void {
    this.pending += line;
    if (this.pending.length >= FLUSH_BYTES) {
      this.flush();
    } else if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => {
        this.flushScheduled = false;
        this.flush();
      });
    }
  }
}

function jsonLine(level: LogLevel, timestamp: string, msg: string, fields?: Fields): string {
  return escapeC1(JSON.stringify(fields ? { ...fields, level, timestamp, msg } : { level, timestamp, msg })) + '\n';
}

/** DEL and C1 controls, which JSON.stringify leaves raw and some terminals still obey. */
const C1 = /[\u007f-\u009f]/g;
/** Any control a client could send to drive the terminal of whoever reads the log. */
// eslint-disable-next-line no-control-regex -- finding them is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

function escapeC1(text: string): string {
  C1.lastIndex = 0;
  return C1.test(text) ? text.replace(C1, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`) : text;
}

/** A JSON string literal with every control byte escaped: client-sent text in a log line. */
export function jsonString(value: string): string {
  return escapeC1(JSON.stringify(value));
}

function textLine(level: LogLevel, timestamp: string, msg: string, fields?: Fields): string {
  let line = `${timestamp} ${level.toUpperCase().padEnd(5)} ${msg}`;
  if (fields) {
    for (const [key, value] of Object.entries(fields)) {
      if (key === 'timestamp' || value === undefined) continue;
      line += ` ${key}=${formatValue(value)}`;
    }
  }
  return line + '\n';
}

function formatValue(value: unknown): string {
  if (typeof value === 'string') {
    return /[\s"=]/.test(value) || value === '' || CONTROL.test(value) ? jsonString(value) : value;
  }
  if (typeof value === 'object' && value !== null) return escapeC1(JSON.stringify(value));
  return String(value);
}
