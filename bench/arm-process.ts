/**
 * One arm's sidecar process (the agent or the no-op control) under the bench: started with the
 * arm's environment on the agent CPU, its JSON lines collected, ready when it logs
 * "monitoring Kong process" for the gateway's worker, stopped with SIGTERM like a pod.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readJsonLines } from '../test/fixture/json-lines';

export interface LogLine {
  msg?: string;
  [key: string]: unknown;
}

export interface ArmProcess {
  pid: number;
  lines: LogLine[];
  /** resolves once a line matches; rejects on exit or timeout with the last lines */
  waitFor(what: string, match: (l: LogLine) => boolean, timeoutMs: number): Promise<LogLine>;
  /** the latest "stats" line */
  lastStats(): LogLine | undefined;
  /**
   * Each numeric field's highest value over every stats line. The counters only grow, and the
   * line logged at shutdown may carry zeros for figures whose source was already closed.
   */
  counters(): Record<string, number>;
  /** SIGTERM (SIGKILL after the deadline); resolves with the exit code */
  stop(deadlineMs: number): Promise<number | null>;
  tail(n: number): string;
}

export function startArmProcess(command: string[], env: Record<string, string>, cpu?: string): ArmProcess {
  const argv = cpu ? ['taskset', '-c', cpu, ...command] : command;
  const child: ChildProcess = spawn(argv[0], argv.slice(1), {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd: process.cwd(),
  });
  const lines: LogLine[] = [];
  const other: string[] = [];
  const waiters = new Set<() => void>();
  readJsonLines<LogLine>(
    child.stdout!,
    (line) => lines.push(line),
    (text) => other.push(text),
    () => {
      for (const w of [...waiters]) w();
    },
  );
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => other.push(chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let done = false;
  void exited.then(() => {
    done = true;
    for (const w of [...waiters]) w();
  });

  const tail = (n: number): string =>
    [...lines.slice(-n).map((l) => JSON.stringify(l)), ...other.slice(-n)].join('\n').slice(-4000);

  return {
    pid: child.pid ?? -1,
    lines,
    tail,
    waitFor(what, match, timeoutMs) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => finish(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)),
          timeoutMs,
        );
        const finish = (err?: Error, line?: LogLine): void => {
          clearTimeout(timer);
          waiters.delete(check);
          if (line) resolve(line);
          else reject(new Error(`${err?.message}\n--- process output ---\n${tail(15)}`));
        };
        const check = (): void => {
          const line = lines.find(match);
          if (line) finish(undefined, line);
          else if (done) finish(new Error(`the process exited while waiting for ${what}`));
        };
        waiters.add(check);
        check();
      });
    },
    lastStats() {
      for (let i = lines.length - 1; i >= 0; i--) if (lines[i].msg === 'stats') return lines[i];
      return undefined;
    },
    counters() {
      const out: Record<string, number> = {};
      for (const l of lines) {
        if (l.msg !== 'stats') continue;
        for (const [k, v] of Object.entries(l)) if (typeof v === 'number') out[k] = Math.max(out[k] ?? v, v);
      }
      return out;
    },
    async stop(deadlineMs) {
      if (done) return child.exitCode;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), deadlineMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}
