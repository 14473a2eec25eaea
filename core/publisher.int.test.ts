/**
 * The publisher against the local broker (scripts/stack up): topic limits, and one message
 * never failing the others it is sent with.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { ConfigResourceTypes, type Kafka, logLevel as KafkaLogLevel } from "kafkajs";
import { LOCAL_BROKERS, localKafka } from "../test/support/local.ts";
import { aNotification } from "../test/support/notifications.ts";
import { waitFor } from "../test/support/wait.ts";
import { MAX_MESSAGE_BYTES, type Notification } from "./contract.ts";
import { type FandaError, InvalidInputError } from "./errors.ts";
import {
  createKafka,
  createPublisher,
  createTopicsKnown,
  dlqTopicOf,
  ensureTopics,
  TOPIC_MAX_MESSAGE_BYTES,
} from "./kafka.ts";
import { createLogger } from "./log.ts";

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
      // On several brokers, the one asked may not know a topic created a moment ago yet.
      const { resources } = await waitFor("the topics' configs", () =>
        admin.describeConfigs({
          includeSynonyms: false,
          resources: [topic, dlqTopicOf(topic)].map((name) => ({
            type: ConfigResourceTypes.TOPIC,
            name,
            configNames: ["max.message.bytes"],
          })),
        }),
      );
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

/** A topic whose own max.message.bytes is small (one made by hand, or by an older build). */
async function smallTopic(maxMessageBytes: number): Promise<string> {
  const name = `fanda-small-${crypto.randomUUID().slice(0, 8)}`;
  const admin = kafka.admin();
  await admin.connect();
  try {
    await createTopicsKnown(admin, [
      {
        topic: name,
        numPartitions: 2,
        replicationFactor: -1,
        configEntries: [{ name: "max.message.bytes", value: String(maxMessageBytes) }],
      },
    ]);
  } finally {
    await admin.disconnect();
  }
  return name;
}

async function messagesIn(name: string): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const offsets = await admin.fetchTopicOffsets(name);
    return offsets.reduce((sum, o) => sum + Number(o.high), 0);
  } finally {
    await admin.disconnect();
  }
}

/** The event id of every message in `name`, duplicates included, in no particular order. */
async function eventIdsIn(name: string): Promise<string[]> {
  const total = await messagesIn(name);
  const consumer = kafka.consumer({
    groupId: `${name}-reader-${crypto.randomUUID().slice(0, 8)}`,
    maxWaitTimeInMs: 300,
  });
  const ids: string[] = [];
  await consumer.connect();
  await consumer.subscribe({ topics: [name], fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message }) => {
      ids.push((JSON.parse(message.value?.toString() ?? "{}") as Notification).eventId);
    },
  });
  try {
    await waitFor(`the ${total} messages of ${name}`, () => ids.length >= total);
  } finally {
    await consumer.disconnect();
  }
  return ids;
}

async function dropTopic(name: string): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  await admin.deleteTopics({ topics: [name] }).catch(() => {});
  await admin.disconnect();
}

const note = (i: number, over: Partial<Notification> = {}) =>
  aNotification({ key: `reports/positive/${i}.pdf`, category: "positive", ...over });

describe("one message never fails its neighbours", () => {
  test("of concurrent publishes, only the one the topic refuses rejects", async () => {
    const name = await smallTopic(4096);
    const publisher = createPublisher({ kafka, topic: name });
    await publisher.connect();
    try {
      const notes = [0, 1, 2, 3, 4, 5].map((i) =>
        note(i, i === 3 ? { eTag: "e".repeat(6000) } : {}),
      );
      const first = publisher.publish([notes[0] as Notification]);
      // These queue behind the first request and go out together in one produce request.
      const calls = notes.slice(1).map((n) => publisher.publish([n]));
      const settled = Promise.allSettled(calls);
      await first;
      const outcomes = await settled;
      expect(outcomes.map((o) => o.status)).toEqual([
        "fulfilled",
        "fulfilled",
        "rejected",
        "fulfilled",
        "fulfilled",
      ]);
      const err = (outcomes[2] as PromiseRejectedResult).reason as FandaError;
      expect(err.retriable).toBe(false);
      const ids = await eventIdsIn(name);
      const accepted = notes.filter((_, i) => i !== 3).map((n) => n.eventId);
      expect([...new Set(ids)].sort()).toEqual([...accepted].sort());
      // One broker refuses the whole coalesced request, and each call is sent again alone.
      // Several brokers each take their partitions' part of it: the part another broker took
      // is written again by the re-send (the processor delivers each event id once).
      if (LOCAL_BROKERS.split(",").length === 1) expect(ids).toHaveLength(5);
      else expect(ids.length).toBeLessThanOrEqual(5 + 4);
    } finally {
      await publisher.disconnect();
      await dropTopic(name);
    }
  }, 60_000);

  test("a message over the contract's limit is refused alone; the rest of the request goes through", async () => {
    const publisher = createPublisher({ kafka, topic });
    await publisher.connect();
    try {
      const first = publisher.publish([note(0)]);
      const calls = [
        publisher.publish([note(1)]),
        publisher.publishRaw([{ key: "big", value: Buffer.alloc(MAX_MESSAGE_BYTES, 120) }]),
        publisher.publish([note(2)]),
      ];
      const settled = Promise.allSettled(calls);
      await first;
      const outcomes = await settled;
      expect(outcomes.map((o) => o.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
      expect((outcomes[1] as PromiseRejectedResult).reason).toBeInstanceOf(InvalidInputError);
    } finally {
      await publisher.disconnect();
    }
  }, 60_000);

  test("many small concurrent publishes never form a request larger than the topic takes", async () => {
    const name = await smallTopic(4096);
    const publisher = createPublisher({ kafka, topic: name, maxMessageBytes: 4096 });
    await publisher.connect();
    try {
      const first = publisher.publish([note(0)]);
      const calls = Array.from({ length: 30 }, (_, i) => publisher.publish([note(i + 1)]));
      const settled = Promise.allSettled(calls);
      await first;
      const outcomes = await settled;
      expect(outcomes.filter((o) => o.status === "rejected")).toEqual([]);
      expect(await messagesIn(name)).toBe(31);
    } finally {
      await publisher.disconnect();
      await dropTopic(name);
    }
  }, 60_000);
});

describe("a broker-side failure that outlasts kafkajs's retries", () => {
  test("is retriable (the topic gone while publishing), not a refusal for good", async () => {
    const name = await smallTopic(MAX_MESSAGE_BYTES);
    const quick = createKafka(
      {
        brokers: LOCAL_BROKERS.split(","),
        auth: "plaintext",
        ssl: false,
        topic: name,
        clientId: "fanda-publisher-retries",
      },
      {
        logger: createLogger({ level: "error", ns: "publisher-retries" }),
        logLevel: KafkaLogLevel.NOTHING,
        overrides: { retry: { retries: 1, initialRetryTime: 50, maxRetryTime: 100 } },
      },
    );
    const publisher = createPublisher({ kafka: quick, topic: name });
    await publisher.connect();
    try {
      // With this few retries, a broker not yet told of the new topic fails the first send.
      await waitFor("a first publish to the new topic", () =>
        publisher.publish([note(0)]).then(() => true),
      );
      await dropTopic(name);
      const err = (await publisher.publish([note(1)]).catch((e: unknown) => e)) as FandaError;
      expect(err).toBeInstanceOf(Error);
      expect((err.cause as Error).name).toBe("KafkaJSNumberOfRetriesExceeded");
      expect(err.retriable).toBe(true);
    } finally {
      await publisher.disconnect();
    }
  }, 60_000);
});
