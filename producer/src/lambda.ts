/**
 * AWS Lambda handler of the producer, for the `nodejs22.x` runtime (bundled by
 * `scripts/build-lambda`). Two triggers:
 *
 * - S3 → Lambda (asynchronous invoke): the event is parsed whole; bad input or a Kafka
 *   failure throws, so Lambda retries and then hands the event to the function's on-failure
 *   destination. Nothing is dropped silently.
 * - S3 → SQS → Lambda: each message is parsed on its own; the handler returns
 *   `batchItemFailures` with the messages that could not be published, so only those are
 *   retried (and, past maxReceiveCount, land in the queue's DLQ).
 *
 * The Kafka producer is created and connected once per container, on the first invocation,
 * and reused; a failed connect fails that invocation and is tried again on the next.
 */

import type { Notification } from "../../core/contract.ts";
import { createKafka, createPublisher, type Publisher } from "../../core/kafka.ts";
import { createLogger, type Logger } from "../../core/log.ts";
import { createCategorizer } from "./category.ts";
import { loadProducerConfig, type ProducerConfig } from "./config.ts";
import { isSqsEvent, parseS3Event, parseSqsRecords, toNotification } from "./s3-event.ts";

/** The part of the Lambda context the handler reads. */
export interface LambdaContext {
  awsRequestId?: string;
}

/** Result for an SQS trigger (ReportBatchItemFailures). */
export interface SqsBatchResponse {
  batchItemFailures: { itemIdentifier: string }[];
}

/** Result for a direct S3 trigger. */
export interface S3Result {
  published: number;
  skipped: number;
}

/** What the handler needs, built once per container. */
export interface ProducerRuntime {
  publisher: Pick<Publisher, "publish">;
  categorize: (key: string) => string;
  notifyOnRemoved: boolean;
  logger: Logger;
}

/**
 * Creates a handler over a runtime factory (called on each invocation; it should cache).
 * @example
 * export const handler = createHandler(() => myRuntime);
 */
export function createHandler(runtime: () => Promise<ProducerRuntime>) {
  return async (
    event: unknown,
    context: LambdaContext = {},
  ): Promise<SqsBatchResponse | S3Result> => {
    const rt = await runtime();
    const traceId = process.env._X_AMZN_TRACE_ID ?? context.awsRequestId ?? crypto.randomUUID();
    const log = rt.logger.child("lambda");
    const notify = (o: Parameters<typeof toNotification>[0]) =>
      toNotification(o, rt.categorize(o.key));

    if (isSqsEvent(event)) {
      const results = parseSqsRecords(event, { notifyOnRemoved: rt.notifyOnRemoved });
      const failed: string[] = [];
      const batch: Notification[] = [];
      const publishedIds: string[] = [];
      for (const r of results) {
        if ("error" in r) {
          log.error("SQS message is not an S3 event; left for retry and the queue's DLQ", {
            messageId: r.messageId,
            err: r.error,
          });
          failed.push(r.messageId);
        } else {
          batch.push(...r.parsed.objects.map(notify));
          if (r.parsed.objects.length > 0) publishedIds.push(r.messageId);
        }
      }
      try {
        await rt.publisher.publish(batch, { traceId });
      } catch (err) {
        log.error("publish failed; the batch's messages will be retried", {
          traceId,
          count: batch.length,
          err,
        });
        failed.push(...publishedIds);
      }
      if (failed.length === 0) log.info("published", { traceId, published: batch.length });
      return { batchItemFailures: failed.map((itemIdentifier) => ({ itemIdentifier })) };
    }

    const parsed = parseS3Event(event, { notifyOnRemoved: rt.notifyOnRemoved });
    const notifications = parsed.objects.map(notify);
    await rt.publisher.publish(notifications, { traceId });
    log.info("published", {
      traceId,
      published: notifications.length,
      skipped: parsed.skipped.length,
      eventIds: notifications.map((n) => n.eventId),
    });
    return { published: notifications.length, skipped: parsed.skipped.length };
  };
}

let cached: Promise<ProducerRuntime> | undefined;

/** Builds the runtime from the environment once per container; a failure is retried next time. */
function containerRuntime(): Promise<ProducerRuntime> {
  cached ??= (async () => {
    const config: ProducerConfig = loadProducerConfig();
    const logger = createLogger({ level: config.logLevel, ns: "fanda.producer" });
    const publisher = createPublisher({
      kafka: createKafka(config.kafka, { logger }),
      topic: config.kafka.topic,
    });
    await publisher.connect();
    return {
      publisher,
      categorize: createCategorizer({ rules: config.categoryRules }),
      notifyOnRemoved: config.notifyOnRemoved,
      logger,
    };
  })().catch((err: unknown) => {
    cached = undefined;
    throw err;
  });
  return cached;
}

/** The Lambda entry point (`lambda.handler`). */
export const handler = createHandler(containerRuntime);
