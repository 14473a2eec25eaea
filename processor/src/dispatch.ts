/**
 * Fan-out: one notification goes to its routed channels in parallel; each channel retries its
 * own retriable failures with exponential backoff and full jitter (or the provider's
 * Retry-After), so one slow or broken channel never blocks or fails another.
 *
 * Each channel ends in one of three outcomes:
 * - delivered;
 * - failed: a final error, or retries exhausted while the channel otherwise works — the
 *   message goes to the dead-letter topic;
 * - deferred: retries exhausted while the channel is failing for every message (its breaker
 *   is open: `breakerThreshold` failed attempts in a row), the channel is unavailable for
 *   longer than a retry may wait (ChannelUnavailableError) or misconfigured (ChannelConfigError:
 *   a revoked token, paused sending; its breaker opens at once and its health names the
 *   setting to fix, until a delivery succeeds), or shutdown interrupted the send.
 *   The outcome is not final: the consumer pauses the partition and tries again later, so an
 *   outage slows consumption instead of dead-lettering everything.
 */
import type { Notification } from "../../core/contract.ts";
import type { Logger } from "../../core/log.ts";
import {
  isExporting,
  runInContext,
  type Span,
  SpanKind,
  SpanStatusCode,
  startSpan,
} from "../../core/tracing.ts";
import type { Channel } from "./channels/channel.ts";
import {
  ChannelConfigError,
  ChannelError,
  ChannelUnavailableError,
  ConfigError,
  toFandaError,
} from "./errors.ts";
import type { Route } from "./routing.ts";
import { abortableSleep } from "./text.ts";

interface OutcomeBase {
  channel: string;
  attempts: number;
  durationMs: number;
  firstAttemptAt: Date;
}

/** The outcome of one channel for one notification. */
export type ChannelOutcome =
  | (OutcomeBase & { status: "delivered"; providerId?: string })
  | (OutcomeBase & { status: "failed"; error: Error })
  | (OutcomeBase & { status: "deferred"; error: Error });

/** What on-call wants to know about a channel right now. */
export interface ChannelHealth {
  /** Failed attempts in a row, across messages. */
  consecutiveFailures: number;
  /** True while the channel fails for every message. */
  breakerOpen: boolean;
  lastOutcome?: ChannelOutcome["status"];
  lastError?: string;
  lastAt?: string;
  /** The channel's own state (rate, waits), when it reports one. */
  provider?: Record<string, unknown>;
  /**
   * Set while the provider refuses the channel's configuration (a revoked token, sending
   * paused): what to fix, the provider's answer, and since when. Cleared by a delivery.
   */
  misconfigured?: { setting: string; error: string; since: string };
}

/** Ends a delivery's span with its outcome (channel, attempts, outcome, provider id). */
function endDeliverySpan(span: Span, outcome: ChannelOutcome): void {
  if (span.isRecording()) {
    span.setAttributes({
      "fanda.attempts": outcome.attempts,
      "fanda.outcome": outcome.status,
      ...(outcome.status === "delivered" && outcome.providerId
        ? { "fanda.provider_id": outcome.providerId }
        : {}),
    });
    if (outcome.status !== "delivered") {
      span.setStatus({ code: SpanStatusCode.ERROR, message: outcome.error.message });
    }
  }
  span.end();
}

/** Options of {@link createDispatcher}. */
export interface DispatcherOptions {
  /** Every enabled channel; routes pick among them. */
  channels: readonly Channel[];
  logger: Logger;
  /** Attempts per channel and message, the first included (default 5). */
  maxAttempts?: number;
  /** First backoff step in ms (default 200). */
  retryBaseMs?: number;
  /** Backoff ceiling in ms (default 30000). */
  retryMaxMs?: number;
  /** Failed attempts in a row after which a channel counts as down (default 2 × maxAttempts). */
  breakerThreshold?: number;
  /** Waits; injected in tests so backoff needs no real time. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Jitter source in [0, 1) (default Math.random). */
  random?: () => number;
  /** Called after each failed attempt that will be retried. */
  onRetry?: (channel: string, error: Error) => void;
  /**
   * Called when a channel becomes misconfigured (`on` true, with the setting to fix) and when
   * a delivery shows it fixed (`on` false, with the setting it had named): for a gauge.
   */
  onMisconfigured?: (channel: string, setting: string, on: boolean) => void;
}

/** Sends one notification to the given channels of its route. */
export interface Dispatcher {
  (
    notification: Notification,
    route: Pick<Route, "targets"> & { channels: readonly string[] },
    signal: AbortSignal,
  ): Promise<ChannelOutcome[]>;
  /** Per-channel health, for readiness and the status page. */
  health(): Record<string, ChannelHealth>;
}

/**
 * Creates the dispatcher.
 * @throws ConfigError for no channels or non-positive retry settings
 * @example
 * const dispatch = createDispatcher({ channels, logger });
 * const outcomes = await dispatch(notification, route("positive"), signal);
 */
export function createDispatcher(options: DispatcherOptions): Dispatcher {
  const maxAttempts = options.maxAttempts ?? 5;
  const base = options.retryBaseMs ?? 200;
  const cap = options.retryMaxMs ?? 30_000;
  const threshold = options.breakerThreshold ?? 2 * maxAttempts;
  const issues: string[] = [];
  if (options.channels.length === 0) issues.push("channels: at least one channel is required");
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1) issues.push("maxAttempts: expected >= 1");
  if (!(base > 0)) issues.push("retryBaseMs: expected > 0");
  if (!(cap >= base)) issues.push("retryMaxMs: expected >= retryBaseMs");
  if (!Number.isInteger(threshold) || threshold < 1) issues.push("breakerThreshold: expected >= 1");
  if (issues.length > 0) throw new ConfigError("dispatcher", issues);
  const sleep = options.sleep ?? abortableSleep;
  const random = options.random ?? Math.random;
  const log = options.logger.child("dispatch");
  const byName = new Map(options.channels.map((c) => [c.name, c]));
  const health = new Map<string, ChannelHealth>(
    options.channels.map((c) => [c.name, { consecutiveFailures: 0, breakerOpen: false }]),
  );

  const backoff = (attempt: number, error: unknown) => {
    const hinted = error instanceof ChannelError ? error.retryAfterMs : undefined;
    if (hinted !== undefined) return Math.min(Math.max(hinted, base), cap);
    return Math.floor(random() * Math.min(cap, base * 2 ** (attempt - 1)));
  };

  // The target (routing settings) each misconfiguration was seen with: only a delivery to that
  // target shows it fixed. A bad Slack channel for one category must not be cleared by every
  // delivery to the good ones (the gauge would flap too fast for any scrape to see it); the
  // deferred messages come back with the same target, so a real fix is seen.
  const misconfiguredTarget = new Map<string, string>();
  const targetKey = (target: Record<string, unknown>) => {
    try {
      return JSON.stringify(target);
    } catch {
      return "";
    }
  };

  const note = (channel: string, outcome: ChannelOutcome, target?: string) => {
    const h = health.get(channel) ?? { consecutiveFailures: 0, breakerOpen: false };
    h.lastOutcome = outcome.status;
    h.lastAt = new Date().toISOString();
    if (outcome.status === "delivered") {
      h.consecutiveFailures = 0;
      h.breakerOpen = false;
      const fixed = h.misconfigured;
      if (fixed && (target === undefined || misconfiguredTarget.get(channel) === target)) {
        misconfiguredTarget.delete(channel);
        delete h.misconfigured;
        log.info("channel configuration works again", { channel, setting: fixed.setting });
        tell(channel, fixed.setting, false);
      }
    } else {
      h.lastError = outcome.error.message;
    }
    health.set(channel, h);
    return outcome;
  };

  const tell = (channel: string, setting: string, on: boolean) => {
    try {
      options.onMisconfigured?.(channel, setting, on);
    } catch {
      // A metrics callback must not change an outcome.
    }
  };

  /** The provider refused the channel's configuration: the channel is down until fixed. */
  const misconfigured = (channel: string, error: ChannelConfigError, target: string) => {
    const h = health.get(channel);
    if (!h) return;
    failedAttempt(channel, error);
    h.breakerOpen = true;
    misconfiguredTarget.set(channel, target);
    const previous = h.misconfigured;
    if (previous?.setting === error.setting) {
      previous.error = error.message;
      return;
    }
    h.misconfigured = {
      setting: error.setting,
      error: error.message,
      since: new Date().toISOString(),
    };
    log.error("channel misconfigured: deferring its messages until fixed", {
      channel,
      setting: error.setting,
      err: error,
    });
    if (previous) tell(channel, previous.setting, false);
    tell(channel, error.setting, true);
  };

  // One failed request is one failure, however many notifications it carried: a Slack digest
  // rejects each of its sends with the same error, which must not open the breaker at once.
  const counted = new WeakSet<object>();
  const failedAttempt = (channel: string, error: object) => {
    const h = health.get(channel);
    if (!h) return 0;
    if (!counted.has(error)) {
      counted.add(error);
      h.consecutiveFailures++;
      if (h.consecutiveFailures >= threshold) h.breakerOpen = true;
    }
    return h.consecutiveFailures;
  };

  const deliver = async (
    channel: Channel,
    n: Notification,
    target: Record<string, unknown>,
    signal: AbortSignal,
  ): Promise<ChannelOutcome> => {
    const started = performance.now();
    const firstAttemptAt = new Date();
    const end = (status: "failed" | "deferred", attempts: number, error: Error): ChannelOutcome =>
      note(channel.name, {
        channel: channel.name,
        status,
        attempts,
        error,
        durationMs: performance.now() - started,
        firstAttemptAt,
      });
    for (let attempt = 1; ; attempt++) {
      try {
        const receipt = await channel.send(n, { signal, target });
        return note(
          channel.name,
          {
            channel: channel.name,
            status: "delivered",
            attempts: attempt,
            durationMs: performance.now() - started,
            firstAttemptAt,
            ...(receipt.providerId ? { providerId: receipt.providerId } : {}),
          },
          targetKey(target),
        );
      } catch (err) {
        const error = toFandaError(`channel ${channel.name}`, err);
        if (signal.aborted) return end("deferred", attempt, error);
        if (err instanceof ChannelConfigError) {
          misconfigured(channel.name, err, targetKey(target));
          return end("deferred", attempt, error);
        }
        if (err instanceof ChannelUnavailableError) {
          log.warn("channel unavailable, deferring", {
            eventId: n.eventId,
            channel: channel.name,
            attempt,
            err: error,
          });
          return end("deferred", attempt, error);
        }
        if (!error.retriable) {
          log.warn("delivery failed (final)", {
            eventId: n.eventId,
            channel: channel.name,
            attempt,
            err: error,
          });
          return end("failed", attempt, error);
        }
        const asked = err instanceof ChannelError ? err.retryAfterMs : undefined;
        if (asked !== undefined && asked > cap) {
          // The receiver named a wait longer than a retry may take (a 429 or 503 with a long
          // Retry-After): retrying sooner ignores it and, after maxAttempts, dead-letters a
          // message it only asked us to hold back. Defer: the partition pauses and comes back.
          log.warn("channel asks for a wait longer than a retry may take, deferring", {
            eventId: n.eventId,
            channel: channel.name,
            attempt,
            retryAfterMs: asked,
            err: error,
          });
          // Counted: a receiver that says so to every message is down, and shows as down.
          failedAttempt(channel.name, err instanceof Error ? err : error);
          return end("deferred", attempt, error);
        }
        const inARow = failedAttempt(channel.name, err instanceof Error ? err : error);
        if (attempt >= maxAttempts) {
          const down = inARow >= threshold;
          log.warn(down ? "channel is down, deferring" : "delivery failed (retries exhausted)", {
            eventId: n.eventId,
            channel: channel.name,
            attempt,
            failuresInARow: inARow,
            err: error,
          });
          return end(down ? "deferred" : "failed", attempt, error);
        }
        options.onRetry?.(channel.name, error);
        try {
          await sleep(backoff(attempt, error), signal);
        } catch {
          return end("deferred", attempt, error);
        }
      }
    }
  };

  const dispatch = (async (n, route, signal) =>
    Promise.all(
      route.channels.map((name) => {
        const channel = byName.get(name);
        if (!channel) {
          const error = new ConfigError("dispatcher", [
            `route names channel ${name}, which is not enabled`,
          ]);
          return Promise.resolve(
            note(name, {
              channel: name,
              status: "failed" as const,
              attempts: 0,
              error,
              durationMs: 0,
              firstAttemptAt: new Date(),
            }),
          );
        }
        const target = route.targets[name] ?? {};
        // Without an SDK nothing records: the send runs in the message's context as it is.
        if (!isExporting()) return deliver(channel, n, target, signal);
        // One span per delivery, active while the channel sends (a webhook passes it on).
        const { span, ctx } = startSpan(`deliver ${name}`, {
          kind: SpanKind.CLIENT,
          attributes: { "fanda.channel": name, "fanda.event_id": n.eventId },
        });
        return runInContext(ctx, () => deliver(channel, n, target, signal)).then(
          (outcome) => {
            endDeliverySpan(span, outcome);
            return outcome;
          },
          (err: unknown) => {
            span.end();
            throw err;
          },
        );
      }),
    )) as Dispatcher;
  dispatch.health = () =>
    Object.fromEntries(
      [...health].map(([k, v]) => [
        k,
        { ...v, ...(v.misconfigured ? { misconfigured: { ...v.misconfigured } } : {}) },
      ]),
    );
  return dispatch;
}
