/**
 * Catching up from the database, one run at a time: a request while one runs makes one more run
 * afterwards, and a failed run tries again a second later, until the broker stops.
 */
import { describeError, log } from "../../log";

export class CatchUpScheduler {
  private running?: Promise<void>;
  private again = false;
  private stopped = false;

  constructor(private readonly catchUp: () => Promise<void>) {}

  request(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.catchUp()
      .catch((error) => {
        log.warn("catching up from the database failed; trying again in a second", describeError(error));
        setTimeout(() => this.request(), 1000).unref?.();
      })
      .finally(() => {
        this.running = undefined;
        if (this.again) {
          this.again = false;
          this.request();
        }
      });
  }

  stop(): void {
    this.stopped = true;
  }
}
