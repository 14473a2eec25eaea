/**
 * Fan-out: one notification goes to every enabled channel in parallel; each channel retries
 * its own retriable failures with exponential backoff and full jitter, so one slow or broken
 * channel never blocks or fails another. The result is final for every channel: delivered,
 * or failed with the last error.
 */
import type { Notification } from "../../producer/src/contract.ts";
import type { Logger } from "../../producer/src/log.ts";
import type { Channel } from "./channels/index.ts";
import { ChannelError, ConfigError, toFandaError } from "./errors.ts";

/** The final outcome of one channel for one notification. */
export type ChannelOutcome =
  | {
      channel: string;
      status: "delivered";
      attempts: number;
      providerId?: string;
      durationMs: number;
    }
  | { channel: string; status: "failed"; attempts: number; error: Error; durationMs: number };

/** Outcome of one notification on every channel. */
export interface DispatchResult {
  delivered: boolean;
  outcomes: ChannelOutcome[];
}

/** Options of {@link createDispatcher}. */
export interface DispatcherOptions {
  channels: readonly Channel[];
  logger: Logger;
  /** Attempts per channel, the first included (default 5). */
  maxAttempts?: number;
  /** First backoff step in ms (default 200). */
  retryBaseMs?: number;
  /** Backoff ceiling in ms (default 30000). */
  retryMaxMs?: number;
  /** Waits; injected in tests so backoff needs no real time. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Jitter source in [0, 1) (default Math.random). */
  random?: () => number;
  /** Called after each channel reaches its final outcome. */
  onOutcome?: (notification: Notification, outcome: ChannelOutcome) => void;
}

/** Sends one notification to every channel. */
export type Dispatcher = (
  notification: Notification,
  signal: AbortSignal,
) => Promise<DispatchResult>;

const abortableSleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });

/**
 * Creates the dispatcher.
 * @throws ConfigError for no channels or non-positive retry settings
 * @example
 * const dispatch = createDispatcher({ channels, logger });
 * const { delivered, outcomes } = await dispatch(notification, AbortSignal.timeout(60_000));
 */
export function createDispatcher(options: DispatcherOptions): Dispatcher {
  const maxAttempts = options.maxAttempts ?? 5;
  const base = options.retryBaseMs ?? 200;
  const cap = options.retryMaxMs ?? 30_000;
  const issues: string[] = [];
  if (options.channels.length === 0) issues.push("channels: at least one channel is required");
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1) issues.push("maxAttempts: expected >= 1");
  if (!(base > 0)) issues.push("retryBaseMs: expected > 0");
  if (!(cap >= base)) issues.push("retryMaxMs: expected >= retryBaseMs");
  if (issues.length > 0) throw new ConfigError("dispatcher", issues);
  const sleep = options.sleep ?? abortableSleep;
  const random = options.random ?? Math.random;
  const log = options.logger.child("dispatch");

  const backoff = (attempt: number, error: unknown) => {
    const hinted = error instanceof ChannelError ? error.retryAfterMs : undefined;
    if (hinted !== undefined) return Math.min(Math.max(hinted, base), cap);
    return Math.floor(random() * Math.min(cap, base * 2 ** (attempt - 1)));
  };

  const deliver = async (
    channel: Channel,
    n: Notification,
    signal: AbortSignal,
  ): Promise<ChannelOutcome> => {
    const started = performance.now();
    const failed = (attempts: number, error: Error): ChannelOutcome => ({
      channel: channel.name,
      status: "failed",
      attempts,
      error,
      durationMs: performance.now() - started,
    });
    for (let attempt = 1; ; attempt++) {
      try {
        const receipt = await channel.send(n, signal);
        return {
          channel: channel.name,
          status: "delivered",
          attempts: attempt,
          durationMs: performance.now() - started,
          ...(receipt.providerId ? { providerId: receipt.providerId } : {}),
        };
      } catch (err) {
        const error = toFandaError(`channel ${channel.name}`, err);
        const last = !error.retriable || attempt >= maxAttempts || signal.aborted;
        log.warn(last ? "delivery failed" : "delivery failed, retrying", {
          eventId: n.eventId,
          channel: channel.name,
          attempt,
          err: error,
        });
        if (last) return failed(attempt, error);
        try {
          await sleep(backoff(attempt, error), signal);
        } catch {
          return failed(attempt, error);
        }
      }
    }
  };

  return async (n, signal) => {
    const outcomes = await Promise.all(
      options.channels.map(async (ch) => {
        const outcome = await deliver(ch, n, signal);
        options.onOutcome?.(n, outcome);
        return outcome;
      }),
    );
    return { delivered: outcomes.every((o) => o.status === "delivered"), outcomes };
  };
}
