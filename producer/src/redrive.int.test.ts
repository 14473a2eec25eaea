/**
 * `scripts/redrive.ts --to kafka` end to end against the local broker (scripts/stack up):
 * on-failure records from an in-memory queue are published to a fresh topic with the
 * producer's own publisher, and read back.
 */
import { describe, expect, test } from "bun:test";
import { HEADERS, type Notification } from "../../core/contract.ts";
import { dlqTopicOf, ensureTopics } from "../../core/kafka.ts";
import { createLogger } from "../../core/log.ts";
import { main } from "../../scripts/redrive.ts";
import { LOCAL_BROKERS, localKafka } from "../../test/support/local.ts";
import { waitFor } from "../../test/support/wait.ts";
import { createCategorizer } from "./category.ts";
import onFailure from "./fixtures/lambda-on-failure.json";
import eventAge from "./fixtures/lambda-on-failure-event-age.json";
import kafkaFailure from "./fixtures/lambda-on-failure-kafka.json";
import testEvent from "./fixtures/s3-test-event.json";
import { createHandler } from "./lambda.ts";
import { createMemoryQueue } from "./redrive.ts";

const records = [onFailure, kafkaFailure, eventAge];

describe("redrive --to kafka", () => {
  test("publishes each record's event with the Lambda path's eventIds and deletes only those", async () => {
    const topic = `fanda-redrive-${crypto.randomUUID().slice(0, 8)}`;
    const kafka = localKafka("fanda-redrive-test", { topic });
    expect(await ensureTopics(kafka, topic, { partitions: 1 })).toEqual([topic, dlqTopicOf(topic)]);
    try {
      const queue = createMemoryQueue([
        { messageId: "timeout", body: JSON.stringify(onFailure) },
        { messageId: "garbage", body: "not an invocation record" },
        { messageId: "kafka", body: JSON.stringify(kafkaFailure) },
        {
          messageId: "test-event",
          body: JSON.stringify({ ...onFailure, requestPayload: testEvent }),
        },
        { messageId: "event-age", body: JSON.stringify(eventAge) },
      ]);
      const out: string[] = [];
      const code = await main(
        [
          "--queue-url",
          "https://sqs.ap-northeast-2.amazonaws.com/123456789012/fanda-ingest-producer-failures",
          "--to",
          "kafka",
        ],
        {
          env: {
            AWS_REGION: "ap-northeast-2",
            KAFKA_BROKERS: LOCAL_BROKERS,
            KAFKA_TOPIC: topic,
            KAFKA_CLIENT_ID: "fanda-redrive-test",
            LOG_LEVEL: "error",
          },
          queue,
          logSink: () => {},
          stdout: (l) => out.push(l),
          stderr: (l) => out.push(l),
        },
      );
      // The garbage message fails, so the run says so.
      expect(code).toBe(1);
      expect(out).toEqual([
        `redriven 3 of 5 message(s) to kafka ${topic}: 1 failed, 1 skipped (left in the queue); stopped: empty`,
      ]);
      expect(queue.deleted).toEqual(["timeout", "kafka", "event-age"]);
      expect(queue.remaining()).toEqual(["garbage", "test-event"]);

      // What the normal Lambda path publishes for the same events.
      const expected: Notification[] = [];
      const lambda = createHandler(async () => ({
        publisher: { publish: async (ns) => void expected.push(...ns) },
        categorize: createCategorizer(),
        notifyOnRemoved: false,
        logger: createLogger({ sink: () => {} }),
      }));
      for (const r of records) await lambda(structuredClone(r.requestPayload));
      expect(expected).toHaveLength(4);

      const got: { key: string; value: Notification; traceId: string }[] = [];
      const consumer = kafka.consumer({ groupId: `${topic}-check`, maxWaitTimeInMs: 200 });
      await consumer.connect();
      try {
        await consumer.subscribe({ topics: [topic], fromBeginning: true });
        await consumer.run({
          eachMessage: async ({ message }) => {
            got.push({
              key: String(message.key),
              value: JSON.parse(String(message.value)) as Notification,
              traceId: String(message.headers?.[HEADERS.traceId]),
            });
          },
        });
        await waitFor("the redriven notifications", () => got.length >= expected.length);
      } finally {
        await consumer.disconnect();
      }
      expect(got.map((m) => m.value)).toEqual(expected);
      expect(got.map((m) => m.value.eventId)).toEqual(expected.map((n) => n.eventId));
      expect(got.map((m) => m.key)).toEqual(expected.map((n) => `${n.bucketName}/${n.objectKey}`));
      // Traced by the failed invocation's request id, to find its logs.
      expect(got.map((m) => m.traceId)).toEqual([
        onFailure.requestContext.requestId,
        kafkaFailure.requestContext.requestId,
        kafkaFailure.requestContext.requestId,
        eventAge.requestContext.requestId,
      ]);
    } finally {
      const admin = kafka.admin();
      await admin.connect();
      await admin.deleteTopics({ topics: [topic, dlqTopicOf(topic)] }).catch(() => {});
      await admin.disconnect();
    }
  }, 60_000);
});
