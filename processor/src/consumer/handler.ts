/**
 * The message handler: one Kafka message in, its outcome out. Decoding and routing happen per
 * batch first (so the batch's claims go to the store in one round trip); then, per message,
 * the claimed channels are sent, the idempotency marks settled, the delivery records and
 * metrics produced, and a failure dead-lettered. The outcome is final (delivered on every
 * routed channel, or dead-lettered) or it carries the reason it is not.
 */
import type { KafkaMessage } from "kafkajs";
import {
  decodeNotification,
  type Notification,
  UnknownSchemaVersionError,
} from "../../../core/contract.ts";
import type { Logger } from "../../../core/log.ts";
import type { DeliveryRecord } from "../delivery-log/index.ts";
import type { ChannelOutcome, Dispatcher } from "../dispatch.ts";
import type { DeadLetter, DeadLetterQueue } from "../dlq.ts";
import { InvalidInputError } from "../errors.ts";
import type { ClaimState, DeliveryKey, IdempotencyStore } from "../idempotency.ts";
import type { Metrics } from "../metrics.ts";
import type { Route, Router } from "../routing.ts";
import type { Settle } from "./store-retry.ts";

/** Why a message's outcome is not final (the partition pauses, Kafka hands it back later). */
export type Reason =
  | "channel-down"
  | "claimed-elsewhere"
  | "store-unavailable"
  | "dlq-unavailable"
  | "audit-unavailable"
  | "shutdown"
  /** The batch's own bookkeeping threw (not one message's): the batch is tried again later. */
  | "processing-error";

/** One message of a batch and what is known of it so far. */
export interface Item {
  message: KafkaMessage;
  notification?: Notification;
  route?: Route;
  /** Claim state per routed channel, same order as route.channels. */
  claims?: ClaimState[];
  /** Set once the outcome is final. */
  final: boolean;
  /** Why not final. */
  reason?: Reason;
}

/** Options of {@link createMessageHandler}. */
export interface MessageHandlerOptions {
  route: Router;
  /** Sends to channels (the dispatcher; only its call is used here). */
  dispatch: (...args: Parameters<Dispatcher>) => ReturnType<Dispatcher>;
  store: Pick<IdempotencyStore, "healthy">;
  dlq: Pick<DeadLetterQueue, "send">;
  settle: Settle;
  metrics: Metrics;
  logger: Logger;
  /** Deliver without idempotency while the store is unreachable. */
  failOpen: boolean;
  abortSignal: AbortSignal;
}

/**
 * The handler's steps. None of them throws: an exception while handling one message (a bug, or
 * input no check foresaw) becomes that message's outcome, a dead letter with reason
 * `processing-error`, so it never stops the batch, the partition or the process.
 */
export interface MessageHandler {
  /** Decodes and routes; what is not a valid notification is dead-lettered (final). */
  decode(topic: string, partition: number, item: Item): Promise<void>;
  /** Sends the claimed channels of a decoded, claimed message and settles its outcome. */
  handle(topic: string, partition: number, item: Item, records: DeliveryRecord[]): Promise<void>;
  /** Makes `err` the outcome of `item`: dead-lettered as `processing-error` (or dlq-unavailable). */
  fail(topic: string, partition: number, item: Item, err: unknown): Promise<void>;
}

/** Message and class of anything thrown, even a value whose printing throws. */
export function describeError(err: unknown): { message: string; name: string } {
  try {
    if (err instanceof Error) return { message: String(err.message), name: String(err.name) };
    return { message: String(err), name: typeof err };
  } catch {
    return { message: "(an error that cannot be printed)", name: "Error" };
  }
}

const CLAIM_STATES: readonly unknown[] = ["claimed", "done", "busy"];

/** Throws unless `route` has the shape of a {@link Route} (a router bug must not go further). */
function checkRoute(route: unknown, category: string): asserts route is Route {
  const r = route as Partial<Route> | undefined;
  const ok =
    typeof r === "object" &&
    r !== null &&
    Array.isArray(r.channels) &&
    r.channels.every((c) => typeof c === "string") &&
    typeof r.targets === "object" &&
    r.targets !== null;
  if (!ok) throw new TypeError(`routing: category ${JSON.stringify(category)} gave no route`);
}

/** The idempotency key of one delivery. */
export const deliveryKey = (n: Notification, channel: string): DeliveryKey => ({
  eventId: n.eventId,
  channel,
});

/** Creates the handler. */
export function createMessageHandler(options: MessageHandlerOptions): MessageHandler {
  const { metrics, dispatch, settle, abortSignal } = options;
  const log = options.logger;

  /** Dead-letters one message; false when the DLQ could not take it (outcome not final). */
  const deadLetter = async (letter: DeadLetter): Promise<boolean> => {
    try {
      await options.dlq.send([letter]);
    } catch (err) {
      log.error("dead-lettering failed; the message stays uncommitted", {
        partition: letter.partition,
        offset: letter.message.offset,
        err,
      });
      return false;
    }
    metrics.deadLetters.inc({ reason: letter.reason });
    log.warn("dead-lettered", {
      topic: letter.topic,
      partition: letter.partition,
      offset: letter.message.offset,
      reason: letter.reason,
      error: letter.error,
    });
    return true;
  };

  const fail = async (topic: string, partition: number, item: Item, err: unknown) => {
    const { message, name } = describeError(err);
    try {
      log.error("processing error; dead-lettering the message", {
        partition,
        offset: item.message.offset,
        error: message,
        errorClass: name,
      });
      const taken = await deadLetter({
        topic,
        partition,
        message: item.message,
        reason: "processing-error",
        error: message,
        errorClass: name,
      });
      item.final = taken;
      item.reason = taken ? undefined : "dlq-unavailable";
    } catch {
      item.final = false;
      item.reason = "dlq-unavailable";
    }
  };

  /**
   * After a failed handling: marks what was delivered done and gives back the other claims
   * (best effort: unmarked claims lapse after their TTL).
   */
  const settleQuietly = async (n: Notification, op: "complete" | "release", channels: string[]) => {
    try {
      await settle(
        op,
        channels.map((c) => deliveryKey(n, c)),
      );
    } catch {
      // The claims lapse after their TTL.
    }
  };

  return {
    fail,

    async decode(topic, partition, item) {
      let notification: Notification;
      try {
        notification = decodeNotification(item.message.value);
      } catch (err) {
        if (!(err instanceof InvalidInputError)) return fail(topic, partition, item, err);
        const taken = await deadLetter({
          topic,
          partition,
          message: item.message,
          reason:
            err instanceof UnknownSchemaVersionError ? "unknown-schema-version" : "invalid-message",
          error: err.message,
          errorClass: err.name,
        });
        if (taken) item.final = true;
        else item.reason = "dlq-unavailable";
        return;
      }
      try {
        const route: unknown = options.route(notification.category);
        checkRoute(route, notification.category);
        item.notification = notification;
        item.route = route;
      } catch (err) {
        return fail(topic, partition, item, err);
      }
    },

    async handle(topic, partition, item, records) {
      const n = item.notification;
      const route = item.route;
      if (!n || !route || !item.claims) return;
      // Records of this message go to the batch only when they are complete; a failure after a
      // send keeps the records of what was really delivered.
      const own: DeliveryRecord[] = [];
      const progress = { settled: false, delivered: [] as string[], claimed: [] as string[] };
      try {
        await handleOne(topic, partition, item, own, progress);
      } catch (err) {
        if (!progress.settled) {
          const delivered = new Set(progress.delivered);
          await settleQuietly(n, "complete", progress.delivered);
          await settleQuietly(
            n,
            "release",
            progress.claimed.filter((c) => !delivered.has(c)),
          );
        }
        await fail(topic, partition, item, err);
      }
      records.push(...own);
    },
  };

  async function handleOne(
    topic: string,
    partition: number,
    item: Item,
    records: DeliveryRecord[],
    progress: { settled: boolean; delivered: string[]; claimed: string[] },
  ) {
    const n = item.notification as Notification;
    const route = item.route as Route;
    const claims = item.claims as ClaimState[];
    if (claims.length !== route.channels.length || claims.some((c) => !CLAIM_STATES.includes(c))) {
      progress.claimed = route.channels.filter((_, i) => claims[i] === "claimed");
      throw new Error(
        `claim bookkeeping: ${claims.length} claim state(s) for ${route.channels.length} channel(s)`,
      );
    }
    const toSend: string[] = [];
    route.channels.forEach((channel, i) => {
      const claim = claims[i];
      if (claim === "claimed") toSend.push(channel);
      else if (claim === "done") {
        metrics.duplicatesSkipped.inc({ channel });
        // A crash between the send and its batch's log write would leave no row; this one
        // (0 attempts, never overwriting an existing row's details) closes that gap.
        const now = new Date();
        records.push({
          notification: n,
          channel,
          status: "delivered",
          attempts: 0,
          firstAttemptAt: now,
          finishedAt: now,
        });
      }
    });
    const busy = claims.some((c) => c === "busy");
    if (toSend.length > 0 && !options.failOpen && !options.store.healthy()) {
      // The store went away after this batch was claimed: a send now could not be marked
      // done, so leave it for the redelivery (our claims lapse; nothing was sent).
      item.reason = "store-unavailable";
      return;
    }
    progress.claimed = toSend;
    const outcomes: ChannelOutcome[] =
      toSend.length > 0
        ? await dispatch(n, { channels: toSend, targets: route.targets }, abortSignal)
        : [];
    if (
      !Array.isArray(outcomes) ||
      outcomes.length !== toSend.length ||
      !toSend.every((c) => outcomes.some((o) => o?.channel === c))
    ) {
      throw new Error(
        `dispatch: ${Array.isArray(outcomes) ? outcomes.length : "no"} outcome(s) for ${toSend.length} channel(s) sent`,
      );
    }
    progress.delivered = outcomes.filter((o) => o.status === "delivered").map((o) => o.channel);
    const delivered = outcomes.filter((o) => o.status === "delivered");
    const failed = outcomes.filter((o) => o.status === "failed");
    const deferred = outcomes.filter((o) => o.status === "deferred");
    const finishedAt = new Date();
    for (const o of outcomes) {
      const labels = { channel: o.channel, category: n.category };
      metrics.sendSeconds.observe({ channel: o.channel, outcome: o.status }, o.durationMs / 1000);
      if (o.status === "delivered") metrics.notifications.inc(labels);
      if (o.status === "failed") metrics.failures.inc(labels);
      if (o.status !== "deferred") {
        records.push({
          notification: n,
          channel: o.channel,
          status: o.status,
          attempts: o.attempts,
          firstAttemptAt: o.firstAttemptAt,
          finishedAt,
          ...(o.status === "delivered" && o.providerId ? { providerId: o.providerId } : {}),
          ...(o.status === "failed" ? { lastError: o.error.message } : {}),
        });
      }
    }
    await Promise.all([
      settle(
        "complete",
        delivered.map((o) => deliveryKey(n, o.channel)),
      ),
      settle(
        "release",
        [...failed, ...deferred].map((o) => deliveryKey(n, o.channel)),
      ),
    ]);
    progress.settled = true;
    if (deferred.length > 0 || busy) {
      item.reason = abortSignal.aborted
        ? "shutdown"
        : deferred.length > 0
          ? "channel-down"
          : "claimed-elsewhere";
      return;
    }
    if (failed.length > 0) {
      const taken = await deadLetter({
        topic,
        partition,
        message: item.message,
        reason: "delivery-failed",
        error: failed.map((o) => (o.status === "failed" ? o.error.message : "")).join("; "),
        errorClass: failed[0]?.status === "failed" ? failed[0].error.name : "Error",
        failedChannels: failed.map((o) => o.channel),
        attempts: failed.map((o) => o.attempts),
      });
      if (!taken) {
        item.reason = "dlq-unavailable";
        return;
      }
    } else {
      metrics.endToEndSeconds.observe(
        { category: n.category },
        Math.max(0, (Date.now() - Date.parse(n.uploadTime)) / 1000),
      );
    }
    item.final = true;
  }
}
