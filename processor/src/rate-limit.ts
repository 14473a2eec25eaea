/**
 * A token bucket (GCRA form): `rate` sends per second with bursts of up to `burst`, shared by
 * everything that sends through it, first come first served. Waiting for a token is how a
 * provider's limit turns into backpressure: the send waits, the batch waits, the consumer
 * fetches nothing new. `block(ms)` holds every sender for a while, as a 429's Retry-After asks.
 */
import { ConfigError } from "./errors.ts";
import { abortableSleep } from "./text.ts";

/** A rate limiter. */
export interface RateLimiter {
  /** Resolves when the caller may send; rejects if `signal` aborts first. */
  take(signal?: AbortSignal): Promise<void>;
  /** Nobody sends for `ms` (a provider said so); later takes queue behind it. */
  block(ms: number): void;
  /** How long a take now would wait, in ms (0 when a token is free). */
  waitMs(): number;
}

/**
 * Makes the limiter for one provider limit, named by `key` (`slack:<channel>`, `email`). The
 * processor passes one that shares each limit across pods through Redis
 * (rate-limit-redis.ts); without it, {@link createRateLimiter} paces this process alone.
 */
export type RateLimiterFactory = (
  key: string,
  options: Pick<RateLimiterOptions, "rate" | "burst" | "onWait">,
) => RateLimiter;

/** Options of {@link createRateLimiter}. */
export interface RateLimiterOptions {
  /** Sends per second, > 0. */
  rate: number;
  /** Sends allowed back to back (default 1). */
  burst?: number;
  /**
   * The clock in ms (default performance.now): monotonic, so a wall-clock step (NTP, a
   * resumed VM) can neither stall takers nor let a burst through.
   */
  now?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Told how long each take waited (only when it waited), for metrics. */
  onWait?: (ms: number) => void;
}

/**
 * Creates a rate limiter.
 * @throws ConfigError for a non-positive rate or burst
 * @example
 * const perChannel = createRateLimiter({ rate: 1, burst: 3 }); // Slack: ~1 message/s per channel
 * await perChannel.take(signal);
 */
export function createRateLimiter(options: RateLimiterOptions): RateLimiter {
  const burst = options.burst ?? 1;
  const issues: string[] = [];
  if (!(options.rate > 0) || !Number.isFinite(options.rate))
    issues.push("rate: expected a number > 0");
  if (!Number.isInteger(burst) || burst < 1) issues.push("burst: expected an integer >= 1");
  if (issues.length > 0) throw new ConfigError("rate limiter", issues);
  const interval = 1000 / options.rate;
  const now = options.now ?? (() => performance.now());
  const sleep = options.sleep ?? abortableSleep;
  // Theoretical arrival time of the next send; a send may go `tolerance` ms ahead of it.
  let tat = Number.NEGATIVE_INFINITY;
  const tolerance = (burst - 1) * interval;
  return {
    async take(signal) {
      const t = now();
      const start = Math.max(tat, t);
      const wait = start - tolerance - t;
      tat = start + interval;
      if (wait > 0) {
        options.onWait?.(wait);
        await sleep(wait, signal);
      }
    },
    block(ms) {
      tat = Math.max(tat, now() + ms + tolerance);
    },
    waitMs() {
      return Math.max(0, Math.max(tat, now()) - tolerance - now());
    },
  };
}

/** The limiter factory without shared state: each process paces itself alone. */
export const localRateLimiter: RateLimiterFactory = (_key, options) => createRateLimiter(options);
