/**
 * End to end through the real local broker (scripts/stack up): an S3 event is POSTed to the
 * ingest, published to Kafka, consumed by the processor and delivered to a webhook sink and
 * the log channel. Each run uses its own topic and group, so runs never see each other.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Kafka, logLevel } from "kafkajs";
import { decodeNotification } from "../../core/contract.ts";
import { createKafka, createPublisher, dlqTopicOf, ensureTopics } from "../../core/kafka.ts";
import { createLogger } from "../../core/log.ts";
import { loadProcessorConfig } from "../../processor/src/config.ts";
import { createSqliteLog } from "../../processor/src/delivery-log/index.ts";
import { DLQ_HEADERS } from "../../processor/src/dlq.ts";
import { type RunningProcessor, startProcessor } from "../../processor/src/main.ts";
import { replayDlq, replayLog } from "../../processor/src/replay.ts";
import { createCategorizer } from "../../producer/src/category.ts";
import putEvent from "../../producer/src/fixtures/s3-put.json";
import { eventIdOf } from "../../producer/src/s3-event.ts";
import { createIngestApp } from "../../producer/src/server.ts";
import { type Sink, startSink } from "../../scripts/sink.ts";
import { s3PutEvent } from "../../scripts/upload.ts";
import { type DeadLetterRecord, readDeadLetters } from "../support/local.ts";
import { waitFor } from "../support/wait.ts";

const brokers = process.env.KAFKA_BROKERS ?? "127.0.0.1:9092";
const run = crypto.randomUUID().slice(0, 8);
const topic = `fanda-e2e-${run}`;
const logger = createLogger({ level: "warn", ns: "test" });

let kafka: Kafka;
let sink: Sink;
let processor: RunningProcessor;
let ingest: ReturnType<typeof Bun.serve>;
let publisher: ReturnType<typeof createPublisher>;
const logLines: string[] = [];
const auditPath = join(tmpdir(), `fanda-e2e-${run}.sqlite`);

type Letter = DeadLetterRecord;

/** POSTs an S3 Put event for `key` to the ingest, as S3 would after an upload. */
function upload(key: string): Promise<Response> {
  return fetch(`http://127.0.0.1:${ingest.port}/s3-events`, {
    method: "POST",
    body: JSON.stringify(s3PutEvent("fanda-uploads-dev", [key])),
  });
}

/** Reads the DLQ from the beginning until a letter satisfies `until`. */
const readDlq = (until: (letter: Letter, all: Letter[]) => boolean): Promise<Letter[]> =>
  readDeadLetters(kafka, topic, `the expected dead letter on ${dlqTopicOf(topic)}`, (all) =>
    all.some((l) => until(l, all)),
  );

beforeAll(async () => {
  const settings = {
    brokers: brokers.split(","),
    auth: "plaintext" as const,
    ssl: false,
    topic,
    clientId: "fanda-test",
  };
  kafka = createKafka(settings, { logger, logLevel: logLevel.ERROR });
  await ensureTopics(kafka, topic, { partitions: 3 });
  // The sink verifies each delivery with the standardwebhooks library, as a receiver would.
  const webhookSecret = `whsec_${randomBytes(32).toString("base64")}`;
  sink = startSink({ secret: webhookSecret });
  const config = loadProcessorConfig({
    KAFKA_BROKERS: brokers,
    KAFKA_TOPIC: topic,
    KAFKA_GROUP_ID: `${topic}-processor`,
    HOST: "127.0.0.1",
    PORT: "0",
    ENABLED_CHANNELS: "log,webhook",
    WEBHOOK_URL: sink.url,
    WEBHOOK_SECRET: webhookSecret,
    DELIVERY_MAX_ATTEMPTS: "3",
    RETRY_BASE_MS: "10",
    RETRY_MAX_MS: "50",
    AUDIT_SQLITE_PATH: auditPath,
    LOG_LEVEL: "error",
  });
  processor = await startProcessor(config, {
    logger,
    write: (line) => logLines.push(line),
    defaultMetrics: false,
    onFatal: (err) => {
      throw err;
    },
  });
  publisher = createPublisher({ kafka, topic });
  await publisher.connect();
  const app = createIngestApp({ publisher, categorize: createCategorizer(), logger });
  ingest = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: app.fetch });
  await waitFor("processor readiness", async () => {
    const res = await fetch(`http://127.0.0.1:${processor.port}/readyz`);
    return res.status === 200;
  });
}, 60_000);

afterAll(async () => {
  await processor?.stop();
  await publisher?.disconnect();
  await ingest?.stop(true);
  await sink?.stop();
  const admin = kafka.admin();
  await admin.connect();
  await admin.deleteTopics({ topics: [topic, dlqTopicOf(topic)] }).catch(() => {});
  await admin.disconnect();
  for (const suffix of ["", "-wal", "-shm"]) rmSync(`${auditPath}${suffix}`, { force: true });
}, 60_000);

describe("pipeline: S3 event → ingest → Kafka → processor → channels", () => {
  test("delivers every field of an uploaded object to the webhook and the log channel", async () => {
    const res = await fetch(`http://127.0.0.1:${ingest.port}/s3-events`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-trace-id": `trace-${run}` },
      body: JSON.stringify(putEvent),
    });
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({ published: 1, skipped: 0 });

    const key = "reports/positive/Q3 실적 report+(final).pdf";
    const eventId = eventIdOf({
      bucket: "fanda-uploads-dev",
      key,
      versionId: "096fKKXTRTtl3on89fVO.nfljtsv6qko",
      sequencer: "0055AED6DCD90281E5",
    });
    const got = await sink.waitFor((b) => (b as { eventId?: string }).eventId === eventId);
    expect(got.body).toEqual({
      schemaVersion: 1,
      eventId,
      fileName: "Q3 실적 report+(final).pdf",
      bucketName: "fanda-uploads-dev",
      objectKey: key,
      uploadTime: "2026-11-27T09:15:30.123Z",
      s3Url: `s3://fanda-uploads-dev/${key}`,
      category: "positive",
      size: 482113,
      eTag: "d41d8cd98f00b204e9800998ecf8427e",
      versionId: "096fKKXTRTtl3on89fVO.nfljtsv6qko",
      sequencer: "0055AED6DCD90281E5",
      eventName: "ObjectCreated:Put",
    });
    expect(got.headers["webhook-id"]).toBe(eventId);
    expect(got.verified).toBe(true);
    // The webhook body is exactly what the contract accepts.
    expect(decodeNotification(JSON.stringify(got.body))).toEqual(got.body as never);

    const logged = await waitFor("the log channel line", () =>
      logLines.map((l) => JSON.parse(l)).find((l) => l.notification?.eventId === eventId),
    );
    // Both channels delivered in the upload's one trace: the log line names the trace id the
    // webhook's traceparent carries.
    const traceId = /^00-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/.exec(
      got.headers.traceparent ?? "",
    )?.[1];
    expect(traceId).toBeDefined();
    expect(logged).toEqual({ channel: "log", notification: got.body, trace_id: traceId });
  }, 60_000);

  test("a test event publishes nothing and bad input is refused with 400", async () => {
    const post = (body: string) =>
      fetch(`http://127.0.0.1:${ingest.port}/s3-events`, { method: "POST", body });
    const testEvent = await post(
      JSON.stringify({ Service: "Amazon S3", Event: "s3:TestEvent", Bucket: "b" }),
    );
    expect(testEvent.status).toBe(202);
    expect(await testEvent.json()).toEqual({ published: 0, skipped: 1 });

    const notJson = await post("{not json");
    expect(notJson.status).toBe(400);
    expect(((await notJson.json()) as { error: string }).error).toContain("not valid JSON");

    const noKey = await post(
      JSON.stringify({
        Records: [
          { ...putEvent.Records[0], s3: { bucket: { name: "b" }, object: { sequencer: "1" } } },
        ],
      }),
    );
    expect(noKey.status).toBe(400);
    expect(((await noKey.json()) as { error: string }).error).toContain("Records[0]");
  });

  test("a message that is not a notification goes to the dead-letter topic with its reason", async () => {
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({
      topic,
      messages: [
        { key: "garbage", value: "this is not json", headers: { origin: "test" } },
        { key: "future", value: JSON.stringify({ schemaVersion: 99, eventId: "x" }) },
      ],
    });
    await producer.disconnect();
    const letters = await readDlq((_l, all) => all.length >= 2);
    const byValue = new Map(letters.map((l) => [l.value, l.headers]));
    expect(byValue.get("this is not json")?.[DLQ_HEADERS.reason]).toBe("invalid-message");
    expect(byValue.get("this is not json")?.origin).toBe("test");
    expect(byValue.get("this is not json")?.[DLQ_HEADERS.sourceTopic]).toBe(topic);
    const future = byValue.get(JSON.stringify({ schemaVersion: 99, eventId: "x" }));
    expect(future?.[DLQ_HEADERS.reason]).toBe("unknown-schema-version");
    expect(future?.[DLQ_HEADERS.error]).toContain("unknown schemaVersion 99");
  }, 60_000);

  test("a webhook that fails with 500 is retried until it accepts", async () => {
    sink.failNext(500, 2);
    expect((await upload("reports/negative/retry-me.txt")).status).toBe(202);
    const got = await sink.waitFor(
      (b) => (b as { objectKey?: string }).objectKey === "reports/negative/retry-me.txt",
    );
    expect((got.body as { category: string }).category).toBe("negative");
    expect(
      sink.received.filter(
        (r) => (r.body as { objectKey?: string }).objectKey === "reports/negative/retry-me.txt",
      ),
    ).toHaveLength(1);
  }, 60_000);

  test("a webhook that refuses with 400 dead-letters the message naming the channel; log still delivers", async () => {
    sink.failNext(400, 1);
    expect((await upload("general/refused.bin")).status).toBe(202);
    const letters = await readDlq((l) => l.value.includes("general/refused.bin"));
    const refused = letters.find((l) => l.value.includes("general/refused.bin"));
    expect(refused?.headers[DLQ_HEADERS.reason]).toBe("delivery-failed");
    expect(refused?.headers[DLQ_HEADERS.channels]).toBe("webhook");
    expect(refused?.headers[DLQ_HEADERS.error]).toContain("400");
    expect(decodeNotification(refused?.value).category).toBe("general");
    await waitFor("the log channel line of the refused object", () =>
      logLines.some((l) => l.includes("general/refused.bin")),
    );
  }, 60_000);

  test("a webhook that refuses our signature (401) is a channel down, not dead letters: paused, the gauge and /readyz name WEBHOOK_SECRET; fixed, it delivers", async () => {
    const metric = async () => {
      const text = await (await fetch(`http://127.0.0.1:${processor.port}/metrics`)).text();
      const line = text
        .split("\n")
        .find((l) =>
          l.startsWith('fanda_channel_misconfigured{channel="webhook",setting="WEBHOOK_SECRET"}'),
        );
      return line ? Number(line.split(" ").at(-1)) : undefined;
    };
    const deadLetters = async () => {
      const text = await (await fetch(`http://127.0.0.1:${processor.port}/metrics`)).text();
      return text
        .split("\n")
        .filter((l) => l.startsWith("fanda_dlq_messages_total"))
        .reduce((sum, l) => sum + Number(l.split(" ").at(-1)), 0);
    };
    const lettersBefore = await deadLetters();
    sink.failNext(401, 1_000_000);
    const keys = Array.from({ length: 5 }, (_, i) => `reports/positive/revoked-${i}.pdf`);
    for (const key of keys) expect((await upload(key)).status).toBe(202);
    await waitFor("/readyz naming the webhook's wrong setting", async () => {
      const ready = (await (await fetch(`http://127.0.0.1:${processor.port}/readyz`)).json()) as {
        dependencies: { channels: Record<string, { misconfigured?: { setting: string } }> };
      };
      return ready.dependencies.channels.webhook?.misconfigured?.setting === "WEBHOOK_SECRET";
    });
    expect(await metric()).toBe(1);
    sink.failNext(401, 0);
    for (const key of keys) {
      await sink.waitFor((b) => (b as { objectKey?: string }).objectKey === key, 60_000);
    }
    await waitFor("the gauge back to 0", async () => (await metric()) === 0);
    expect(await deadLetters()).toBe(lettersBefore);
  }, 90_000);

  test("replaying a dead letter sends only the channel that failed, once", async () => {
    sink.failNext(400, 1);
    const key = "replay/from-dlq.txt";
    expect((await upload(key)).status).toBe(202);
    const letters = await readDlq((l) => l.value.includes(key));
    const eventId = decodeNotification(letters.find((l) => l.value.includes(key))?.value).eventId;
    await waitFor("the log channel's delivery", () => logLines.some((l) => l.includes(eventId)));

    const report = await replayDlq({ kafka, topic, publisher, logger, filter: { eventId } });
    expect(report.replayed).toBe(1);
    const got = await sink.waitFor((b) => (b as { eventId?: string }).eventId === eventId);
    expect((got.body as { objectKey: string }).objectKey).toBe(key);

    // Again: the webhook is done now, and the log channel was done all along.
    expect(
      (await replayDlq({ kafka, topic, publisher, logger, filter: { eventId } })).replayed,
    ).toBe(1);
    const marker = "replay/marker.txt";
    await upload(marker);
    await sink.waitFor((b) => (b as { objectKey?: string }).objectKey === marker);
    expect(
      sink.received.filter((r) => (r.body as { eventId?: string }).eventId === eventId),
    ).toHaveLength(1);
    expect(logLines.filter((l) => l.includes(eventId))).toHaveLength(1);
  }, 60_000);

  test("a dry run reports without publishing, and invalid messages are not replayed by default", async () => {
    const report = await replayDlq({ kafka, topic, publisher, logger, dryRun: true });
    expect(report.replayed).toBe(0);
    expect(report.scanned).toBeGreaterThanOrEqual(4);
    expect(report.skipped).toBeGreaterThanOrEqual(1);
    await expect(
      replayDlq({
        kafka,
        topic,
        publisher,
        logger,
        filter: { since: new Date(2), until: new Date(1) },
      }),
    ).rejects.toThrow(/--until: must be after --since/);
  }, 60_000);

  test("replaying from the delivery log re-sends failed deliveries", async () => {
    sink.failNext(400, 1);
    const key = "replay/from-log.txt";
    expect((await upload(key)).status).toBe(202);
    const audit = createSqliteLog({ path: auditPath });
    try {
      const failed = await waitFor("the failed row in the delivery log", async () => {
        const rows = await audit.failed();
        return rows.find((r) => r.notification.objectKey === key);
      });
      expect(failed.channel).toBe("webhook");
      const report = await replayLog({
        deliveryLog: audit,
        publisher,
        logger,
        filter: { eventId: failed.notification.eventId },
      });
      expect(report.replayed).toBe(1);
      await sink.waitFor((b) => (b as { objectKey?: string }).objectKey === key);
      await waitFor(
        "the row to say delivered",
        async () => (await audit.failed({ eventId: failed.notification.eventId })).length === 0,
      );
    } finally {
      await audit.close();
    }
  }, 60_000);
});
