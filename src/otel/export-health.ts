/**
 * Says when span export stops and starts working, from each export attempt as it ends (not from
 * an export's final result, which comes only once its retries are exhausted, up to the timeout
 * later): a warning at the first failed attempt of an outage, a line at the first success after
 * it, with how long it lasted and how many attempts failed.
 */
import type { Logger } from '../log';

type Log = Pick<Logger, 'info' | 'warn'>;

export class ExportHealth {
  private working = false;
  private failingSince = 0;
  private failedAttempts = 0;

  constructor(
    private readonly log: Log,
    /** what is exported, for the log lines: "span" */
    private readonly what: string,
    private readonly now: () => number = Date.now,
  ) {}

  /** One export attempt ended (a retry is an attempt of its own). */
  readonly attempt = (ok: boolean, error?: Error): void => {
    if (ok) {
      if (this.failedAttempts > 0) {
        this.log.info(`${this.what} export recovered`, {
          outage_ms: this.now() - this.failingSince,
          failed_attempts: this.failedAttempts,
        });
        this.failedAttempts = 0;
      } else if (!this.working) {
        this.log.info(`${this.what} export is working`);
      }
      this.working = true;
      return;
    }
    if (this.failedAttempts++ === 0) {
      this.failingSince = this.now();
      this.log.warn(
        `${this.what} export failing; ${this.what}s are retried, then dropped and counted, until it recovers`,
        {
          error: error?.message,
        },
      );
    }
  };
}
