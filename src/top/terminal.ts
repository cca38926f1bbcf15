/**
 * The interactive view: the alternate screen, redrawn once a second with only what changed
 * (ansi-diff), keys read raw (r, e, p sort; q or Ctrl-C quit), a full redraw when the terminal is
 * resized. Whatever ends it (a key, a signal, an exception) puts the terminal back as it was:
 * main screen, cursor shown, cooked mode.
 */
import fs from 'node:fs';
import readline from 'node:readline';
import ansiDiff from 'ansi-diff';
import type { LiveSnapshot } from '../output/live/snapshot';
import { render, SORT_KEYS, type ViewState } from './render';

const ENTER = '\x1b[?1049h\x1b[?25l\x1b[H\x1b[2J';
const LEAVE = '\x1b[0m\x1b[H\x1b[2J\x1b[?25h\x1b[?1049l';
const CLEAR = '\x1b[H\x1b[2J';
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

export interface InteractiveOptions {
  source: string;
  fetch(): Promise<LiveSnapshot>;
  input: NodeJS.ReadStream;
  output: NodeJS.WriteStream & { fd: number };
  color: boolean;
  intervalMs?: number;
}

export function runInteractive(o: InteractiveOptions): Promise<number> {
  const { input, output } = o;
  const state: ViewState = { source: o.source, sort: 'rate' };
  const size = () => ({ width: output.columns || 80, height: output.rows || 24 });
  let differ = ansiDiff(size());
  let done = false;
  let fetching = false;

  const draw = (): void => {
    if (done) return;
    output.write(differ.update(render(state, { ...size(), color: o.color }).join('\n')));
  };
  const redrawAll = (): void => {
    differ = ansiDiff(size());
    output.write(CLEAR);
    draw();
  };
  const poll = async (): Promise<void> => {
    if (fetching) return;
    fetching = true;
    try {
      state.snapshot = await o.fetch();
      state.error = undefined;
    } catch (err) {
      state.error = `cannot read ${o.source}: ${(err as Error).message} (retrying)`;
    } finally {
      fetching = false;
    }
    draw();
  };
  // The last resort (an exception on the way out): synchronous, so it lands before the exit.
  const restoreNow = (): void => {
    if (input.isTTY) input.setRawMode(false);
    try {
      fs.writeSync(output.fd, LEAVE);
    } catch {
      // the terminal is gone
    }
  };

  return new Promise<number>((resolve) => {
    const onKey = (text: string | undefined, key: readline.Key | undefined): void => {
      if ((key?.ctrl && key.name === 'c') || text === 'q' || text === 'Q') {
        finish(0);
        return;
      }
      const sort = text === undefined ? undefined : SORT_KEYS[text.toLowerCase()];
      if (sort !== undefined && sort !== state.sort) {
        state.sort = sort;
        draw();
      }
    };
    const onSignal = (): void => finish(0);
    const timer = setInterval(() => void poll(), o.intervalMs ?? 1000);
    const finish = (code: number): void => {
      if (done) return;
      done = true;
      clearInterval(timer);
      input.off('keypress', onKey);
      output.off('resize', redrawAll);
      for (const s of SIGNALS) process.off(s, onSignal);
      process.off('exit', restoreNow);
      if (input.isTTY) input.setRawMode(false);
      input.pause();
      output.write(LEAVE, () => resolve(code));
    };

    output.write(ENTER);
    process.on('exit', restoreNow);
    for (const s of SIGNALS) process.on(s, onSignal);
    readline.emitKeypressEvents(input);
    if (input.isTTY) input.setRawMode(true);
    input.on('keypress', onKey);
    input.resume();
    output.on('resize', redrawAll);
    draw();
    void poll();
  });
}
