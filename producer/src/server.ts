/**
 * Local HTTP ingest: `POST /s3-events` takes an S3 event notification and publishes one
 * message per object event. The Lambda handler does the same work in AWS.
 *
 * Run: `bun producer/src/server.ts` (port `PRODUCER_PORT`, default 8081).
 */
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { MAX_TRACE_ID_BYTES } from "../../core/contract.ts";
import { ConfigError, InvalidInputError, toFandaError } from "../../core/errors.ts";
import { createKafka, createPublisher, type Publisher } from "../../core/kafka.ts";
import { createLogger, type Logger } from "../../core/log.ts";
import { extractTraceContext, runInContext, startTracing } from "../../core/tracing.ts";
import { createCategorizer } from "./category.ts";
import { loadProducerConfig } from "./config.ts";
import { parseS3Event, toNotification } from "./s3-event.ts";
import { startIngest } from "./trace.ts";

/** Options of {@link createIngestApp}. */
export interface IngestAppOptions {
  publisher: Pick<Publisher, "publish">;
  categorize: (key: string) => string;
  logger: Logger;
  /** Notify on ObjectRemoved events too (default false). */
  notifyOnRemoved?: boolean;
  /** Largest accepted request body in bytes (default 1 MiB). */
  maxBodyBytes?: number;
}

/**
 * Builds the ingest's Hono app.
 * Answers `202 {"published":n,"skipped":m}`; `400 {"error":…}` for bad input, including
 * anything the contract or the topic would refuse (nothing published); `503 {"error":…,
 * "retriable":true}` when Kafka did not take the messages (safe to retry); `500` with
 * `"retriable":false` when the broker refused them for good (retrying cannot help).
 * @example
 * const app = createIngestApp({ publisher, categorize: createCategorizer(), logger });
 * Bun.serve({ port: 8081, fetch: app.fetch });
 */
export function createIngestApp(options: IngestAppOptions): Hono {
  const log = options.logger.child("ingest");
  const maxBodyBytes = options.maxBodyBytes ?? 1024 * 1024;
  if (!Number.isInteger(maxBodyBytes) || maxBodyBytes <= 0) {
    throw new ConfigError("ingest", [
      `maxBodyBytes: expected a positive integer, got ${maxBodyBytes}`,
    ]);
  }
  const app = new Hono();
  app.get("/healthz", (c) => c.json({ status: "ok" }));
  app.post(
    "/s3-events",
    bodyLimit({
      maxSize: maxBodyBytes,
      onError: (c) => c.json({ error: `request body is larger than ${maxBodyBytes} bytes` }, 413),
    }),
    async (c) => {
      let body: unknown;
      try {
        body = JSON.parse(await c.req.text());
      } catch (err) {
        return c.json({ error: `request body is not valid JSON: ${(err as Error).message}` }, 400);
      }
      let notifications: ReturnType<typeof toNotification>[];
      let skipped: number;
      try {
        const parsed = parseS3Event(body, { notifyOnRemoved: options.notifyOnRemoved ?? false });
        notifications = parsed.objects.map((o) => toNotification(o, options.categorize(o.key)));
        skipped = parsed.skipped.length;
      } catch (err) {
        if (err instanceof InvalidInputError) return c.json({ error: err.message }, 400);
        throw err;
      }
      const traceId = c.req.header("x-trace-id") ?? crypto.randomUUID();
      if (Buffer.byteLength(traceId) > MAX_TRACE_ID_BYTES) {
        return c.json({ error: `x-trace-id is over ${MAX_TRACE_ID_BYTES} bytes` }, 400);
      }
      // A `traceparent` on the request is continued; without one, each record starts a trace.
      const ingest = startIngest(notifications.length, extractTraceContext(c.req.header()), {
        "fanda.records": notifications.length,
      });
      const inTrace = <T>(fn: () => T): T =>
        ingest.shared ? runInContext(ingest.shared, fn) : fn();
      try {
        await options.publisher.publish(notifications, { traceId, contexts: ingest.contexts });
      } catch (err) {
        ingest.end(err);
        const e = toFandaError("ingest: publishing", err);
        inTrace(() =>
          log.error("publish failed", { requestId: traceId, count: notifications.length, err: e }),
        );
        if (e instanceof InvalidInputError) return c.json({ error: e.message }, 400);
        // 503 tells a client to try again; a refusal for good must not.
        return c.json({ error: e.message, retriable: e.retriable }, e.retriable ? 503 : 500);
      }
      ingest.end();
      inTrace(() =>
        log.info("published", {
          requestId: traceId,
          published: notifications.length,
          skipped,
          eventIds: notifications.map((n) => n.eventId),
        }),
      );
      return c.json({ published: notifications.length, skipped }, 202);
    },
  );
  return app;
}

async function main(): Promise<void> {
  let config: ReturnType<typeof loadProducerConfig>;
  try {
    config = loadProducerConfig();
  } catch (err) {
    console.error((err as Error).message);
    process.exit(2);
  }
  const logger = createLogger({ level: config.logLevel, ns: "fanda.producer" });
  const tracing = await startTracing(config.tracing, {
    onError: (err) => logger.warn("trace export failed", { err }),
  });
  const categorize = createCategorizer({ rules: config.categoryRules });
  const kafka = createKafka(config.kafka, { logger });
  const publisher = createPublisher({
    kafka,
    topic: config.kafka.topic,
    onRenew: (err) =>
      logger.warn("Kafka lost the producer's sequence state; publishing on a new producer", {
        err,
      }),
  });
  await publisher.connect();
  const app = createIngestApp({
    publisher,
    categorize,
    logger,
    notifyOnRemoved: config.notifyOnRemoved,
  });
  const server = Bun.serve({ port: config.port, hostname: "127.0.0.1", fetch: app.fetch });
  logger.info("ingest listening", {
    url: `http://127.0.0.1:${server.port}/s3-events`,
    topic: config.kafka.topic,
    brokers: config.kafka.brokers,
  });
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info("stopping", { signal });
    await server.stop();
    await publisher.disconnect();
    await tracing.shutdown();
    process.exit(0);
  };
  process.once("SIGTERM", () => void stop("SIGTERM"));
  process.once("SIGINT", () => void stop("SIGINT"));
}

if (import.meta.main) {
  main().catch((err) => {
    console.error(
      JSON.stringify({ level: "error", msg: "producer failed to start", err: String(err) }),
    );
    process.exit(1);
  });
}
