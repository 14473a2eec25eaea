/**
 * The OAUTHBEARER client path (the one MSK IAM uses) against the local broker's
 * SASL_PLAINTEXT listener, which validates unsecured JWTs (scripts/stack up).
 */
import { describe, expect, test } from "bun:test";
import { logLevel } from "kafkajs";
import { aNotification } from "../test/support/notifications.ts";
import { waitFor } from "../test/support/wait.ts";
import {
  createKafka,
  createPublisher,
  dlqTopicOf,
  ensureTopics,
  type KafkaSettings,
} from "./kafka.ts";
import { createLogger } from "./log.ts";

const oauthBrokers = (process.env.KAFKA_OAUTH_BROKERS ?? "127.0.0.1:9094").split(",");
const logger = createLogger({ level: "error", ns: "test" });

const settings = (topic: string): KafkaSettings => ({
  brokers: oauthBrokers,
  auth: "oauthbearer",
  ssl: false,
  topic,
  clientId: "fanda-oauth-test",
});

describe("kafka OAUTHBEARER", () => {
  test("authenticates, creates topics, produces and consumes through the SASL listener", async () => {
    const topic = `fanda-oauth-${crypto.randomUUID().slice(0, 8)}`;
    const kafka = createKafka(settings(topic), { logger, logLevel: logLevel.ERROR });
    expect(await ensureTopics(kafka, topic, { partitions: 1 })).toEqual([topic, dlqTopicOf(topic)]);
    expect(await ensureTopics(kafka, topic, { partitions: 1 })).toEqual([]);

    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic, messages: [{ key: "k", value: "hello over oauthbearer" }] });
    await producer.disconnect();

    const consumer = kafka.consumer({ groupId: `${topic}-g`, maxWaitTimeInMs: 500 });
    const values: string[] = [];
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }) => void values.push(String(message.value)),
    });
    try {
      await waitFor("the message over OAUTHBEARER", () => values.length > 0);
    } finally {
      await consumer.disconnect();
    }
    expect(values).toEqual(["hello over oauthbearer"]);

    const admin = kafka.admin();
    await admin.connect();
    await admin.deleteTopics({ topics: [topic, dlqTopicOf(topic)] });
    await admin.disconnect();
  }, 60_000);

  test("the broker refuses a token that is not a valid JWT", async () => {
    const kafka = createKafka(settings("unused"), {
      logger,
      logLevel: logLevel.NOTHING,
      overrides: {
        retry: { retries: 0 },
        sasl: {
          mechanism: "oauthbearer",
          oauthBearerProvider: async () => ({ value: "not-a-jwt" }),
        },
      },
    });
    // Unpatched kafkajs 2.2.4 ignored the broker's RFC 7628 error reply, so connect()
    // resolved and the first request failed; patches/kafkajs@2.2.4.patch reads it.
    await expect(kafka.producer().connect()).rejects.toThrow(
      /SASL OAUTHBEARER authentication failed: broker refused the token: \{"status":"invalid_token"\}/,
    );
  }, 30_000);

  test("a publisher whose token is refused fails at connect, saying so", async () => {
    const kafka = createKafka(settings("fanda-notifications"), {
      logger,
      logLevel: logLevel.NOTHING,
      overrides: {
        sasl: {
          mechanism: "oauthbearer",
          oauthBearerProvider: async () => ({ value: "not-a-jwt" }),
        },
      },
    });
    const publisher = createPublisher({ kafka, topic: "fanda-notifications" });
    await expect(publisher.connect()).rejects.toThrow(/broker refused the token/);
  }, 30_000);

  test("a topic that appears while connect asks (a broker behind on metadata) is found: connect waits for it", async () => {
    const topic = `fanda-late-${crypto.randomUUID().slice(0, 8)}`;
    const kafka = createKafka(settings(topic), { logger, logLevel: logLevel.NOTHING });
    const publisher = createPublisher({ kafka, topic, unknownTopicForMs: 20_000 });
    const connecting = publisher.connect();
    await Bun.sleep(300);
    await ensureTopics(kafka, topic, { partitions: 1 });
    await connecting;
    await publisher.publish([aNotification()]);
    await publisher.disconnect();
  }, 60_000);

  test("without the wait (unknownTopicForMs 0) the first unknown answer fails connect", async () => {
    const topic = `fanda-missing-${crypto.randomUUID().slice(0, 8)}`;
    const kafka = createKafka(settings(topic), { logger, logLevel: logLevel.NOTHING });
    const publisher = createPublisher({ kafka, topic, unknownTopicForMs: 0 });
    await expect(publisher.connect()).rejects.toThrow(/does not exist/);
  }, 30_000);

  test("a publisher for a missing topic fails at connect, saying so", async () => {
    const topic = `fanda-missing-${crypto.randomUUID().slice(0, 8)}`;
    const kafka = createKafka(settings(topic), { logger, logLevel: logLevel.NOTHING });
    const publisher = createPublisher({ kafka, topic });
    await expect(publisher.connect()).rejects.toThrow(/does not exist/);
  }, 30_000);
});

describe("kafka SCRAM-SHA-512", () => {
  const scramBrokers = (process.env.KAFKA_SCRAM_BROKERS ?? "127.0.0.1:9095").split(",");
  const scram = (topic: string, password: string): KafkaSettings => ({
    brokers: scramBrokers,
    auth: "scram",
    ssl: false,
    topic,
    clientId: "fanda-scram-test",
    username: "fanda",
    password,
  });

  test("a publisher authenticates with the local SCRAM user and publishes", async () => {
    const kafka = createKafka(scram("fanda-notifications", "fanda-local-secret"), {
      logger,
      logLevel: logLevel.ERROR,
    });
    const publisher = createPublisher({ kafka, topic: "fanda-notifications" });
    await publisher.connect();
    await publisher.disconnect();
  }, 30_000);

  test("a wrong password fails at connect with an authentication error", async () => {
    const kafka = createKafka(scram("fanda-notifications", "wrong"), {
      logger,
      logLevel: logLevel.NOTHING,
    });
    await expect(
      createPublisher({ kafka, topic: "fanda-notifications" }).connect(),
    ).rejects.toThrow(/SASL SCRAM SHA512 authentication failed/);
  }, 30_000);
});
