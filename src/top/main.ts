/**
 * `kong-watcher top`: a live view of the running agent's traffic, read from its snapshot endpoint
 * (TOP_ADDRESS:TOP_PORT). It loads no BPF and needs no privilege: it is an HTTP client.
 *
 *   interactive, on a terminal   the full-screen view, refreshed every second
 *   --once                       one plain-text snapshot on stdout, then exit (scripts, tests)
 *   not a terminal               a plain-text snapshot every second, until interrupted
 */
import { defaultUrl, fetchSnapshot, snapshotUrl } from './client';
import { render, type ScreenSize } from './render';
import { runInteractive } from './terminal';

type Env = Record<string, string | undefined>;

/** Width of plain-text output that does not go to a terminal (COLUMNS wins). */
const PLAIN_WIDTH = 100;

export function topUsage(env: Env = {}): string {
  return `Usage: kong-watcher top [--once] [--url URL]

A live view of the traffic the running agent sees: rates, errors, percentiles, Kong's time
against the upstream's, a table per route, the slowest and the failing recent requests, and the
agent's own health. It reads the agent's snapshot endpoint; it loads nothing into the kernel.

  --once       print one plain-text snapshot and exit (for scripts)
  --url URL    the agent's endpoint (default ${defaultUrl(env)}, from TOP_ADDRESS and TOP_PORT)
  -h, --help   this text

Keys: r, e, p sort the routes by rate, errors or p99; q (or Ctrl-C) quits.
Colour is off when NO_COLOR is set or the output is not a terminal.
`;
}

interface TopArgs {
  once: boolean;
  url: string;
}

function parseArgs(argv: string[], env: Env): TopArgs | string {
  const args: TopArgs = { once: false, url: defaultUrl(env) };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--once') args.once = true;
    else if (a === '--url' && i + 1 < argv.length) args.url = argv[++i];
    else if (a.startsWith('--url=')) args.url = a.slice('--url='.length);
    else return `unknown argument ${a} (try kong-watcher top --help)`;
  }
  return args;
}

export async function runTop(argv: string[], env: Env = process.env): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(topUsage(env));
    return 0;
  }
  const args = parseArgs(argv, env);
  if (typeof args === 'string') {
    process.stderr.write(`kong-watcher top: ${args}\n`);
    return 2;
  }
  let url: URL;
  try {
    url = snapshotUrl(args.url);
  } catch (err) {
    process.stderr.write(`kong-watcher top: ${(err as Error).message}\n`);
    return 2;
  }
  const source = url.host;
  const out = process.stdout;
  const plain: ScreenSize = {
    width: Number(env.COLUMNS) || (out.isTTY ? out.columns : PLAIN_WIDTH),
    height: Infinity,
    color: false,
  };
  const once = async (): Promise<boolean> => {
    try {
      const snapshot = await fetchSnapshot(url);
      out.write(render({ source, sort: 'rate', snapshot }, plain).join('\n') + '\n');
      return true;
    } catch (err) {
      process.stderr.write(
        `kong-watcher top: cannot read ${url.href}: ${(err as Error).message}. ` +
          'Is the agent running here, with its TOP_PORT and TOP_ADDRESS?\n',
      );
      return false;
    }
  };
  if (args.once) return (await once()) ? 0 : 1;
  if (!out.isTTY) return batch(once);
  const noColor = env.NO_COLOR !== undefined && env.NO_COLOR !== '';
  return runInteractive({
    source,
    fetch: () => fetchSnapshot(url),
    input: process.stdin,
    output: out,
    color: !noColor,
  });
}

/** Not a terminal: a plain snapshot every second, like `top -b`, until a signal. */
function batch(once: () => Promise<boolean>): Promise<number> {
  return new Promise((resolve) => {
    let stopped = false;
    const stop = (): void => {
      stopped = true;
      resolve(0);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    const loop = async (): Promise<void> => {
      while (!stopped) {
        await once();
        process.stdout.write('\n');
        await new Promise((r) => setTimeout(r, 1000));
      }
    };
    void loop();
  });
}
