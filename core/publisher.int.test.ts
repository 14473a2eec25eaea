/**
 * The publisher against the local broker (scripts/stack up): topic limits, and one message
 * never failing the others it is sent with.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { ConfigResourceTypes, type Kafka } from "kafkajs";
import { LOCAL_BROKERS, localKafka } from "../test/support/local.ts";
import { MAX_MESSAGE_BYTES } from "./contract.ts";
import { dlqTopicOf, ensureTopics, TOPIC_MAX_MESSAGE_BYTES } from "./kafka.ts";

let kafka: Kafka;
const topic = `fanda-publisher-${crypto.randomUUID().slice(0, 8)}`;

beforeAll(async () => {
  kafka = localKafka("fanda-publisher-test", { topic });
  await ensureTopics(kafka, topic, { partitions: 2 });
});

afterAll(async () => {
  const admin = kafka.admin();
  await admin.connect();
  await admin.deleteTopics({ topics: [topic, dlqTopicOf(topic)] }).catch(() => {});
  await admin.disconnect();
});

describe(`publisher on ${LOCAL_BROKERS}`, () => {
  test("ensureTopics sets max.message.bytes from the contract's limit", async () => {
    const admin = kafka.admin();
    await admin.connect();
    try {
      const { resources } = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [topic, dlqTopicOf(topic)].map((name) => ({
          type: ConfigResourceTypes.TOPIC,
          name,
          configNames: ["max.message.bytes"],
        })),
      });
      const limits = resources.map((r) => [r.resourceName, r.configEntries[0]?.configValue]);
      expect(limits).toEqual([
        [topic, String(MAX_MESSAGE_BYTES)],
        [dlqTopicOf(topic), String(TOPIC_MAX_MESSAGE_BYTES.dlq)],
      ]);
    } finally {
      await admin.disconnect();
    }
  }, 60_000);
});
