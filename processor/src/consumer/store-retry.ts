/**
 * The store-retry policy for marks after a send: `complete` (done) and `release` are retried
 * through an idempotency-store outage, because the send cannot be undone and a lost `done` mark
 * is a resend waiting to happen. One deadline per outage is shared by every mark waiting on it:
 * a batch's sends give up together `retryMs` after the store first failed, not one after
 * another. Giving up leaves the outcome as it is (at worst, a redelivery sends again).
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "../../../core/log.ts";
import { ConfigError } from "../errors.ts";
import type { DeliveryKey, IdempotencyStore } from "../idempotency.ts";

/** Options of {@link createSettler}. */
export interface SettlerOptions {
  store: Pick<IdempotencyStore, "complete" | "release">;
  logger: Logger;
  /** Stops waiting (hard shutdown): the marks are given up at once. */
  abortSignal: AbortSignal;
  /** How long one outage is waited out, in ms (default 30000). */
  retryMs?: number;
  /** Longest pause between attempts, in ms (default 2000). */
  maxBackoffMs?: number;
  /** The clock (tests pass their own). */
  now?: () => number;
  /** Waits `ms` unless `signal` aborts (tests pass their own). */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

/** Marks deliveries done or released, waiting out a store outage; never throws. */
export type Settle = (op: "complete" | "release", keys: DeliveryKey[]) => Promise<void>;

/**
 * Creates the settler.
 * @throws ConfigError for a non-positive retry window or backoff
 */
export function createSettler(options: SettlerOptions): Settle {
  const retryMs = options.retryMs ?? 30_000;
  const maxBackoffMs = options.maxBackoffMs ?? 2000;
  const issues: string[] = [];
  if (!(retryMs >= 0)) issues.push("retryMs: expected a number >= 0");
  if (!(maxBackoffMs > 0)) issues.push("maxBackoffMs: expected a number > 0");
  if (issues.length > 0) throw new ConfigError("settler", issues);
  const now = options.now ?? Date.now;
  const wait =
    options.sleep ??
    ((ms: number, signal: AbortSignal) =>
      sleep(ms, undefined, { signal }).then(
        () => {},
        () => {},
      ));
  const log = options.logger;
  let giveUpAt: number | undefined;
  return async (op, keys) => {
    if (keys.length === 0) return;
    for (let attempt = 1; ; attempt++) {
      try {
        await options.store[op](keys);
        giveUpAt = undefined;
        return;
      } catch (err) {
        giveUpAt ??= now() + retryMs;
        if (now() >= giveUpAt || options.abortSignal.aborted) {
          log.error(`idempotency ${op} failed; a redelivery may resend`, { keys, err });
          return;
        }
        await wait(Math.min(maxBackoffMs, 100 * 2 ** attempt), options.abortSignal);
      }
    }
  };
}
