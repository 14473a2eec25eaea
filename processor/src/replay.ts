/**
 * Replay: sends dead letters, or failed deliveries from the delivery log, back through the
 * main topic. Replays stay idempotent per (event, channel), also long after the idempotency
 * store's done TTL: replay asks the delivery log (one `delivered` query) and does not replay
 * a dead letter whose failed channels have all delivered since; and the processor, whose
 * claims fall back on the same log (withDeliveryLogFallback), sends a replayed event only on
 * the channels without a delivered row.
 *
 * From the DLQ, the read is bounded: each partition is read up to the high watermark it had
 * when the replay started, so a replay never chases its own output or runs forever.
 */
import type { IHeaders, Kafka } from "kafkajs";
import { decodeNotification, messageKey } from "../../core/contract.ts";
import { dlqTopicOf, type Publisher } from "../../core/kafka.ts";
import type { Logger } from "../../core/log.ts";
import type { DeliveryLog } from "./delivery-log/index.ts";
import { type DeadLetterReason, DLQ_HEADERS } from "./dlq.ts";
import { ConfigError, toFandaError } from "./errors.ts";

/** Header a replayed message carries: where it came from. */
export const REPLAYED_FROM = "replayed-from";

/** Which dead letters to replay. */
export interface DlqFilter {
  /** Only these reasons (default: every reason except invalid-message, which cannot succeed). */
  reasons?: DeadLetterReason[];
  eventId?: string;
  /** Dead-lettered at or after. */
  since?: Date;
  /** Dead-lettered before. */
  until?: Date;
  limit?: number;
}

/** What a replay did. */
export interface ReplayReport {
  scanned: number;
  replayed: number;
  skipped: number;
  /** Of the skipped, those whose failed channels all have a delivered row by now. */
  alreadyDelivered: number;
  /** eventIds replayed, in order (for the operator's log). */
  eventIds: string[];
}

const DEFAULT_REASONS: DeadLetterReason[] = [
  "delivery-failed",
  "unknown-schema-version",
  "processing-error",
];

const headerText = (headers: IHeaders | undefined, name: string) => {
  const v = headers?.[name];
  if (v === undefined) return undefined;
  return Array.isArray(v) ? String(v[0]) : String(v);
};

/**
 * Replays dead letters of `topic` into `topic`.
 * @param options.dryRun report what would be replayed, publish nothing
 * @throws ConfigError for a bad filter
 */
export async function replayDlq(options: {
  kafka: Kafka;
  topic: string;
  publisher: Pick<Publisher, "publishRaw">;
  logger: Logger;
  filter?: DlqFilter;
  dryRun?: boolean;
  /** Gives up when the DLQ cannot be read to its end within this time (default 60 s). */
  timeoutMs?: number;
  /**
   * Asked, per (event, failed channel), whether it has delivered since: such dead letters
   * are not replayed. An unreachable log fails the replay rather than resend blindly.
   */
  deliveryLog?: Pick<DeliveryLog, "delivered">;
}): Promise<ReplayReport> {
  const filter = options.filter ?? {};
  const reasons = filter.reasons ?? DEFAULT_REASONS;
  if (filter.since && filter.until && filter.until <= filter.since) {
    throw new ConfigError("replay", ["--until: must be after --since"]);
  }
  if (filter.limit !== undefined && (!Number.isInteger(filter.limit) || filter.limit < 1)) {
    throw new ConfigError("replay", ["--limit: expected a positive integer"]);
  }
  const source = dlqTopicOf(options.topic);
  const log = options.logger.child("replay");
  const admin = options.kafka.admin();
  await admin.connect();
  const ends = new Map<number, bigint>();
  try {
    for (const p of await admin.fetchTopicOffsets(source)) {
      if (BigInt(p.high) > BigInt(p.low)) ends.set(p.partition, BigInt(p.high));
    }
  } finally {
    await admin.disconnect();
  }
  const report: ReplayReport = {
    scanned: 0,
    replayed: 0,
    skipped: 0,
    alreadyDelivered: 0,
    eventIds: [],
  };
  if (ends.size === 0) return report;

  // A throwaway group: a replay reads from the beginning and leaves no offsets behind.
  const consumer = options.kafka.consumer({
    groupId: `fanda-replay-${crypto.randomUUID()}`,
    maxWaitTimeInMs: 500,
  });
  const remaining = new Set(ends.keys());
  const { promise: finished, resolve: finish, reject: fail } = Promise.withResolvers<void>();
  const toSend: {
    key: Buffer | null;
    value: Buffer;
    headers: IHeaders;
    eventId?: string;
    failedChannels: string[];
  }[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [source], fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        const end = ends.get(partition);
        if (end === undefined || BigInt(message.offset) >= end) return;
        if (BigInt(message.offset) + 1n >= end) remaining.delete(partition);
        report.scanned++;
        const reason = headerText(message.headers, DLQ_HEADERS.reason) as
          | DeadLetterReason
          | undefined;
        const at = Date.parse(headerText(message.headers, DLQ_HEADERS.time) ?? "");
        let eventId: string | undefined;
        try {
          eventId = decodeNotification(message.value).eventId;
        } catch {
          eventId = undefined;
        }
        const wanted =
          reason !== undefined &&
          reasons.includes(reason) &&
          message.value !== null &&
          (!filter.eventId || filter.eventId === eventId) &&
          (!filter.since || at >= filter.since.getTime()) &&
          (!filter.until || at < filter.until.getTime()) &&
          (filter.limit === undefined || toSend.length < filter.limit);
        if (!wanted || !message.value) {
          report.skipped++;
        } else {
          const headers: IHeaders = {};
          for (const [k, v] of Object.entries(message.headers ?? {})) {
            if (!k.startsWith("dlq-") && v !== undefined) headers[k] = v;
          }
          headers[REPLAYED_FROM] = `${source}/${partition}/${message.offset}`;
          const failedChannels = (headerText(message.headers, DLQ_HEADERS.channels) ?? "")
            .split(",")
            .map((c) => c.trim())
            .filter((c) => c.length > 0);
          toSend.push({
            key: message.key,
            value: message.value,
            headers,
            ...(eventId ? { eventId } : {}),
            failedChannels,
          });
        }
        if (remaining.size === 0) finish();
      },
    });
    const timer = setTimeout(
      () =>
        fail(
          new Error(`could not read ${source} to its end within ${options.timeoutMs ?? 60_000} ms`),
        ),
      options.timeoutMs ?? 60_000,
    );
    try {
      await finished;
    } finally {
      clearTimeout(timer);
    }
  } finally {
    await consumer.disconnect();
  }
  const wanted = options.deliveryLog
    ? await stillUndelivered(options.deliveryLog, toSend)
    : toSend.map(() => true);
  const sending = toSend.filter((_, i) => wanted[i]);
  report.alreadyDelivered = toSend.length - sending.length;
  report.skipped += report.alreadyDelivered;
  for (const m of sending) if (m.eventId) report.eventIds.push(m.eventId);
  const messages = sending.map(({ key, value, headers }) => ({ key, value, headers }));
  if (!options.dryRun && messages.length > 0) await options.publisher.publishRaw(messages);
  report.replayed = options.dryRun ? 0 : messages.length;
  log.info(options.dryRun ? "replay dry run" : "replayed dead letters", { ...report, source });
  return report;
}

/**
 * Per record, whether any of its failed channels lacks a delivered row (one query for all).
 * A record that names no channels (or no event) is kept: there is nothing to look up.
 */
async function stillUndelivered(
  deliveryLog: Pick<DeliveryLog, "delivered">,
  records: readonly { eventId?: string; failedChannels: readonly string[] }[],
): Promise<boolean[]> {
  const keys = records.flatMap((r) =>
    r.eventId ? r.failedChannels.map((channel) => ({ eventId: r.eventId as string, channel })) : [],
  );
  let delivered: boolean[];
  try {
    delivered = keys.length === 0 ? [] : await deliveryLog.delivered(keys);
  } catch (err) {
    throw toFandaError("replay: reading delivered rows from the delivery log", err);
  }
  let at = 0;
  return records.map((r) => {
    if (!r.eventId || r.failedChannels.length === 0) return true;
    const mine = delivered.slice(at, at + r.failedChannels.length);
    at += r.failedChannels.length;
    return mine.some((d) => !d);
  });
}

/**
 * Re-sends failed deliveries recorded in the delivery log (newest state per event/channel).
 * Each event is published once, however many of its channels failed; the processor sends it
 * only on the channels without a delivered row.
 */
export async function replayLog(options: {
  deliveryLog: Pick<DeliveryLog, "failed" | "delivered">;
  publisher: Pick<Publisher, "publishRaw">;
  logger: Logger;
  filter?: { since?: Date; eventId?: string; limit?: number };
  dryRun?: boolean;
}): Promise<ReplayReport> {
  let failed: Awaited<ReturnType<DeliveryLog["failed"]>>;
  try {
    failed = await options.deliveryLog.failed(options.filter ?? {});
  } catch (err) {
    throw toFandaError("replay: reading the delivery log", err);
  }
  // A failed row may have been delivered since it was read (a processor still retrying).
  const open = await stillUndelivered(
    options.deliveryLog,
    failed.map((f) => ({ eventId: f.notification.eventId, failedChannels: [f.channel] })),
  );
  const seen = new Set<string>();
  const toSend = failed.flatMap((f, i) => {
    if (!open[i] || seen.has(f.notification.eventId)) return [];
    seen.add(f.notification.eventId);
    return [
      {
        key: Buffer.from(messageKey(f.notification)),
        value: Buffer.from(JSON.stringify(f.notification)),
        headers: {
          "content-type": "application/json",
          "schema-version": "1",
          [REPLAYED_FROM]: "delivery-log",
        },
      },
    ];
  });
  if (!options.dryRun && toSend.length > 0) await options.publisher.publishRaw(toSend);
  const report: ReplayReport = {
    scanned: failed.length,
    replayed: options.dryRun ? 0 : toSend.length,
    skipped: failed.length - toSend.length,
    alreadyDelivered: open.filter((o) => !o).length,
    eventIds: [...seen],
  };
  options.logger
    .child("replay")
    .info(options.dryRun ? "replay dry run" : "replayed failed deliveries", { ...report });
  return report;
}
