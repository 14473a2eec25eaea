/**
 * AWS Lambda handler of the producer, for the `nodejs22.x` runtime (bundled by
 * `scripts/build-lambda`). Two triggers:
 *
 * - S3 → Lambda (asynchronous invoke): the event is parsed whole; bad input or a Kafka
 *   failure throws, so Lambda retries and then hands the event to the function's on-failure
 *   destination. Nothing is dropped silently.
 * - S3 → SQS → Lambda: each message is parsed, checked and published on its own; the handler
 *   returns `batchItemFailures` with the messages that were not published, so only those are
 *   retried. A message that can never be published (not an S3 event, or an object the
 *   contract or the topic refuses) is reported too, with an error log, as every invalid
 *   message always was: it is retried up to the queue's maxReceiveCount and then kept in the
 *   queue's DLQ for someone to look at, never dropped and never failing its neighbours.
 *
 * The Kafka producer is created and connected once per container, on the first invocation,
 * and reused; a failed connect fails that invocation and is tried again on the next.
 *
 * Tracing: a sampled X-Ray trace of the invocation (`_X_AMZN_TRACE_ID`, Sampled=1) is
 * continued; otherwise each S3 record starts a trace of its own (an unsampled X-Ray header
 * would make every span of the invocation unsampled). Spans are flushed before the invocation
 * returns: Lambda freezes the container afterwards.
 */

import { MAX_TRACE_ID_BYTES, type Notification } from "../../core/contract.ts";
import { createKafka, createPublisher, type Publisher } from "../../core/kafka.ts";
import { createLogger, type Logger } from "../../core/log.ts";
import { type Context, startTracing, xrayTraceContext } from "../../core/tracing.ts";
import { createCategorizer } from "./category.ts";
import { loadProducerConfig, type ProducerConfig } from "./config.ts";
import { isSqsEvent, parseS3Event, parseSqsRecords, toNotification } from "./s3-event.ts";
import { startIngest } from "./trace.ts";

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
  /** Exports the invocation's spans before it returns (tracing's forceFlush). */
  flush?: () => Promise<void>;
}

/** The invocation's X-Ray trace, when Lambda sampled it. */
function incomingTrace(header: string | undefined): Context | undefined {
  if (!header || !/(^|;)\s*Sampled=1\s*(;|$)/.test(header)) return undefined;
  return xrayTraceContext(header);
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
    try {
      return await handle(rt, event, context);
    } finally {
      await rt.flush?.();
    }
  };
}

/** One invocation's work (see the module comment). */
async function handle(
  rt: ProducerRuntime,
  event: unknown,
  context: LambdaContext,
): Promise<SqsBatchResponse | S3Result> {
  const xray = process.env._X_AMZN_TRACE_ID;
  // The X-Ray header grows with its Lineage; past the header limit the request id traces.
  const traceId =
    (xray && Buffer.byteLength(xray) <= MAX_TRACE_ID_BYTES ? xray : undefined) ??
    context.awsRequestId ??
    crypto.randomUUID();
  const incoming = incomingTrace(xray);
  const log = rt.logger.child("lambda");
  const notify = (o: Parameters<typeof toNotification>[0]) =>
    toNotification(o, rt.categorize(o.key));

  if (isSqsEvent(event)) {
    const results = parseSqsRecords(event, { notifyOnRemoved: rt.notifyOnRemoved });
    let published = 0;
    // One publish per message: the publisher still sends them together, but each message
    // gets its own outcome, so one the broker refuses fails only itself.
    const outcomes = await Promise.all(
      results.map(async (r): Promise<string | undefined> => {
        if ("error" in r) {
          log.error("SQS message is not an S3 event; left for retry and the queue's DLQ", {
            messageId: r.messageId,
            err: r.error,
          });
          return r.messageId;
        }
        let notifications: Notification[];
        try {
          notifications = r.parsed.objects.map(notify);
        } catch (err) {
          log.error("SQS message cannot be published; left for retry and the queue's DLQ", {
            messageId: r.messageId,
            err,
          });
          return r.messageId;
        }
        const ingest = startIngest(notifications.length, incoming, {
          "faas.invocation_id": context.awsRequestId ?? "",
        });
        try {
          await rt.publisher.publish(notifications, { traceId, contexts: ingest.contexts });
          ingest.end();
          published += notifications.length;
          return undefined;
        } catch (err) {
          ingest.end(err);
          log.error("publish failed; the message will be retried", {
            requestId: traceId,
            messageId: r.messageId,
            count: notifications.length,
            err,
          });
          return r.messageId;
        }
      }),
    );
    const failed = outcomes.filter((id): id is string => id !== undefined);
    log.info("published", { requestId: traceId, published, failed: failed.length });
    return { batchItemFailures: failed.map((itemIdentifier) => ({ itemIdentifier })) };
  }

  const parsed = parseS3Event(event, { notifyOnRemoved: rt.notifyOnRemoved });
  const notifications = parsed.objects.map(notify);
  const ingest = startIngest(notifications.length, incoming, {
    "faas.invocation_id": context.awsRequestId ?? "",
  });
  try {
    await rt.publisher.publish(notifications, { traceId, contexts: ingest.contexts });
  } catch (err) {
    ingest.end(err);
    throw err;
  }
  ingest.end();
  log.info("published", {
    requestId: traceId,
    published: notifications.length,
    skipped: parsed.skipped.length,
    eventIds: notifications.map((n) => n.eventId),
  });
  return { published: notifications.length, skipped: parsed.skipped.length };
}

let cached: Promise<ProducerRuntime> | undefined;

/** Builds the runtime from the environment once per container; a failure is retried next time. */
function containerRuntime(): Promise<ProducerRuntime> {
  cached ??= (async () => {
    const config: ProducerConfig = loadProducerConfig();
    const logger = createLogger({ level: config.logLevel, ns: "fanda.producer" });
    const tracing = await startTracing(config.tracing, {
      onError: (err) => logger.warn("trace export failed", { err }),
    });
    const publisher = createPublisher({
      kafka: createKafka(config.kafka, { logger }),
      topic: config.kafka.topic,
      onRenew: (err) =>
        logger.warn("Kafka lost the producer's sequence state; publishing on a new producer", {
          err,
        }),
    });
    await publisher.connect();
    return {
      publisher,
      categorize: createCategorizer({ rules: config.categoryRules }),
      notifyOnRemoved: config.notifyOnRemoved,
      logger,
      flush: () => tracing.forceFlush(),
    };
  })().catch((err: unknown) => {
    cached = undefined;
    throw err;
  });
  return cached;
}

/** The Lambda entry point (`lambda.handler`). */
export const handler = createHandler(containerRuntime);
