/**
 * The consumer in this process against the real broker (scripts/stack up): faults one message or
 * one dependency causes stop at that message. Real Kafka and DLQ topic, the in-memory
 * idempotency store, an in-memory SQLite delivery log (wrapped where a test makes it fail), and a
 * scripted dispatcher (the channels are not what is under test here).
 */
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { type Consumer, type Kafka, KafkaJSError, logLevel } from "kafkajs";
import type { Notification } from "../../core/contract.ts";
import {
  createKafka,
  createPublisher,
  createTopicsKnown,
  dlqTopicOf,
  ensureTopics,
} from "../../core/kafka.ts";
import { createLogger } from "../../core/log.ts";
import { LOCAL_BROKERS, localKafka, readDeadLetters } from "../../test/support/local.ts";
import { aNotification } from "../../test/support/notifications.ts";
import { waitFor } from "../../test/support/wait.ts";
import { type ConsumerOptions, createNotificationConsumer } from "./consumer.ts";
import { createSqliteLog, type DeliveryLog } from "./delivery-log/index.ts";
import type { ChannelOutcome, Dispatcher } from "./dispatch.ts";
import { createDeadLetterQueue, DLQ_HEADERS } from "./dlq.ts";
import { createHttpApp } from "./http.ts";
import { createMemoryStore, type MemoryState } from "./idempotency.ts";
import { createMetrics, type Metrics } from "./metrics.ts";
import { createRouter } from "./routing.ts";

const run = crypto.randomUUID().slice(0, 8);
const kafka = localKafka("fanda-consumer-test");
const logger = createLogger({ level: "error", sink: () => {} });
const topics: string[] = [];
const cleanups: (() => Promise<void>)[] = [];

/** A fresh one-partition topic; its DLQ too unless `dlq` is false. */
async function newTopic(options: { dlq?: boolean } = {}): Promise<string> {
  const topic = `fanda-consumer-${run}-${topics.length}`;
  topics.push(topic);
  if (options.dlq === false) {
    const admin = kafka.admin();
    await admin.connect();
    await createTopicsKnown(admin, [{ topic, numPartitions: 1, replicationFactor: -1 }]);
    await admin.disconnect();
  } else {
    await ensureTopics(kafka, topic, { partitions: 1 });
  }
  return topic;
}

async function publish(topic: string, notifications: Notification[]) {
  const publisher = createPublisher({ kafka, topic });
  await publisher.connect();
  await publisher.publish(notifications);
  await publisher.disconnect();
}

const at = new Date();
/** What the scripted dispatcher does with one event. */
type Behaviour = "deliver" | "fail" | "defer" | "throw";

/** A dispatcher that delivers every channel unless `behaviour` says otherwise; records sends. */
function aDispatcher(behaviour: (n: Notification) => Behaviour = () => "deliver") {
  const sent: string[] = [];
  const dispatch = async (
    n: Notification,
    route: { channels: readonly string[] },
  ): Promise<ChannelOutcome[]> => {
    sent.push(n.eventId);
    const b = behaviour(n);
    if (b === "throw") throw new TypeError(`dispatcher broke on ${n.eventId}`);
    return route.channels.map((channel) =>
      b === "deliver"
        ? { channel, status: "delivered", attempts: 1, durationMs: 1, firstAttemptAt: at }
        : {
            channel,
            status: b === "defer" ? "deferred" : "failed",
            attempts: 1,
            durationMs: 1,
            firstAttemptAt: at,
            error: new Error(b === "defer" ? "channel down" : "refused"),
          },
    );
  };
  return { dispatch: Object.assign(dispatch, { health: () => ({}) }) as Dispatcher, sent };
}

/** Events of the consumer kafkajs builds for `kafka`, counted, plus the consumer itself. */
interface Observed {
  kafka: Kafka;
  counts: Record<string, number>;
  consumer?: Consumer;
}

/** Wraps `kafka` so the test sees the consumer's instrumentation events. */
function observed(base: Kafka, wrap?: (c: Consumer) => void): Observed {
  const o: Observed = { kafka: Object.create(base) as Kafka, counts: {} };
  o.kafka.consumer = (config) => {
    const c = base.consumer(config);
    for (const name of ["GROUP_JOIN", "REBALANCING", "HEARTBEAT", "CRASH", "STOP"] as const) {
      c.on(c.events[name], () => {
        o.counts[name] = (o.counts[name] ?? 0) + 1;
      });
    }
    wrap?.(c);
    o.consumer = c;
    return c;
  };
  return o;
}

interface Started {
  consumer: ReturnType<typeof createNotificationConsumer>;
  metrics: Metrics;
  fatal: Error[];
  groupId: string;
  start: Promise<void>;
}

/** Creates and starts a consumer of `topic` (start() is awaited unless `awaitStart` is false). */
async function startConsumer(
  topic: string,
  options: Partial<ConsumerOptions> & { awaitStart?: boolean } = {},
): Promise<Started> {
  const { awaitStart = true, ...overrides } = options;
  const metrics = createMetrics({ defaultMetrics: false });
  const store = createMemoryStore();
  const sqlite = createSqliteLog({ path: ":memory:" });
  await sqlite.migrate();
  const dlq = createDeadLetterQueue({ kafka, topic });
  await dlq.connect();
  const fatal: Error[] = [];
  const groupId = `${topic}-group`;
  const consumer = createNotificationConsumer({
    kafka,
    topic,
    groupId,
    dispatch: aDispatcher().dispatch,
    route: createRouter({ enabled: ["log"] }),
    store,
    deliveryLog: sqlite,
    dlq,
    logger,
    metrics,
    sessionTimeoutMs: 6000,
    pauseMinMs: 100,
    pauseMaxMs: 500,
    commitIntervalMs: 100,
    onFatal: (e) => fatal.push(e),
    ...overrides,
  });
  const start = consumer.start();
  start.catch(() => {});
  cleanups.push(async () => {
    await consumer.stop().catch(() => {});
    await dlq.disconnect().catch(() => {});
    await store.close();
    await sqlite.close();
  });
  if (awaitStart) await start;
  return { consumer, metrics, fatal, groupId, start };
}

async function committed(groupId: string, topic: string): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const [t] = await admin.fetchOffsets({ groupId, topics: [topic] });
    return Number(t?.partitions[0]?.offset ?? -1);
  } finally {
    await admin.disconnect();
  }
}

/** Waits until the group committed `offset` on the topic's partition 0. */
const committedTo = (s: Started, topic: string, offset: number) =>
  waitFor(`offset ${offset} committed`, async () => (await committed(s.groupId, topic)) >= offset, {
    timeoutMs: 30_000,
    intervalMs: 200,
  });

/** The dead letters of `topic` (at least `atLeast` of them), with their headers as text. */
async function deadLetters(topic: string, atLeast: number) {
  const records = await readDeadLetters(
    kafka,
    topic,
    `${atLeast} dead letter(s)`,
    (all) => all.length >= atLeast,
    { timeoutMs: 20_000 },
  );
  return records.map((r) => ({
    eventId: (JSON.parse(r.value) as Notification).eventId,
    headers: r.headers,
  }));
}

afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

afterAll(async () => {
  const admin = kafka.admin();
  await admin.connect();
  await admin.deleteTopics({ topics: topics.flatMap((t) => [t, dlqTopicOf(t)]) }).catch(() => {});
  await admin.disconnect();
});

describe("one message's fault stops only that message", () => {
  test("a category named like a built-in property is routed; a throwing dispatcher dead-letters its message (processing-error); the neighbours are delivered; the consumer keeps running", async () => {
    const topic = await newTopic();
    const sent = [
      aNotification({ key: "a/1.pdf" }),
      aNotification({ key: "a/2.pdf", category: "constructor" }),
      aNotification({ key: "a/3.pdf" }),
      aNotification({ key: "a/4.pdf", category: "general" }),
      aNotification({ key: "a/5.pdf" }),
    ];
    const broken = sent[2]?.eventId;
    const { dispatch, sent: dispatched } = aDispatcher((n) =>
      n.eventId === broken ? "throw" : "deliver",
    );
    await publish(topic, sent);
    const s = await startConsumer(topic, { dispatch });
    await committedTo(s, topic, sent.length);
    const letters = await deadLetters(topic, 1);
    expect(letters.map((l) => [l.eventId, l.headers[DLQ_HEADERS.reason]])).toEqual([
      [broken as string, "processing-error"],
    ]);
    expect(letters[0]?.headers[DLQ_HEADERS.error]).toContain("dispatcher broke on");
    expect(letters[0]?.headers[DLQ_HEADERS.errorClass]).toBe("TypeError");
    expect(new Set(dispatched)).toEqual(new Set(sent.map((n) => n.eventId)));
    expect(s.fatal).toEqual([]);
    expect(s.consumer.state()).toMatchObject({ running: true, joined: true });
    const dead = (await s.metrics.deadLetters.get()).values;
    expect(dead.map((v) => [v.labels.reason, v.value])).toEqual([["processing-error", 1]]);
  }, 60_000);

  test("a router that throws for one category: that message is dead-lettered (processing-error), the rest delivered", async () => {
    const topic = await newTopic();
    const sent = [
      aNotification({ key: "b/1.pdf" }),
      aNotification({ key: "b/2.pdf", category: "boom" }),
      aNotification({ key: "b/3.pdf" }),
    ];
    const fallback = createRouter({ enabled: ["log"] });
    await publish(topic, sent);
    const s = await startConsumer(topic, {
      route: (category) => {
        if (category === "boom") throw new RangeError("no route for boom");
        return fallback(category);
      },
    });
    await committedTo(s, topic, sent.length);
    const letters = await deadLetters(topic, 1);
    expect(letters.map((l) => [l.eventId, l.headers[DLQ_HEADERS.reason]])).toEqual([
      [sent[1]?.eventId as string, "processing-error"],
    ]);
    expect(s.fatal).toEqual([]);
    expect(s.consumer.state().running).toBe(true);
  }, 60_000);
});

describe("two copies of one eventId in one fetched batch", () => {
  test("only the first is sent; the second sees it done (a duplicate skipped); both are final", async () => {
    const topic = await newTopic();
    const twice = aNotification({ key: "c/1.pdf" });
    const other = aNotification({ key: "c/2.pdf" });
    const { dispatch, sent } = aDispatcher();
    await publish(topic, [twice, other, twice]);
    const s = await startConsumer(topic, { dispatch });
    await committedTo(s, topic, 3);
    expect(sent.filter((id) => id === twice.eventId)).toHaveLength(1);
    expect(sent.filter((id) => id === other.eventId)).toHaveLength(1);
    const skipped = (await s.metrics.duplicatesSkipped.get()).values;
    expect(skipped.map((v) => [v.labels.channel, v.value])).toEqual([["log", 1]]);
  }, 60_000);

  test("the first failed: the second takes its own path (sent, failed, dead-lettered); both are final", async () => {
    const topic = await newTopic();
    const twice = aNotification({ key: "d/1.pdf" });
    const { dispatch, sent } = aDispatcher((n) =>
      n.eventId === twice.eventId ? "fail" : "deliver",
    );
    await publish(topic, [twice, twice]);
    const s = await startConsumer(topic, { dispatch });
    await committedTo(s, topic, 2);
    expect(sent).toEqual([twice.eventId, twice.eventId]);
    const letters = await deadLetters(topic, 2);
    expect(letters.map((l) => l.headers[DLQ_HEADERS.reason])).toEqual([
      "delivery-failed",
      "delivery-failed",
    ]);
  }, 60_000);
});

describe("messages behind a deferred one in their batch", () => {
  test("one that failed for good, and one that is invalid, are each handled and dead-lettered once, however often the batch comes back", async () => {
    const topic = await newTopic();
    const slow = aNotification({ key: "e/1.pdf" });
    const bad = aNotification({ key: "e/2.pdf" });
    const good = aNotification({ key: "e/3.pdf" });
    let passes = 0;
    const { dispatch, sent } = aDispatcher((n) => {
      if (n.eventId === slow.eventId) return ++passes <= 3 ? "defer" : "deliver";
      return n.eventId === bad.eventId ? "fail" : "deliver";
    });
    await publish(topic, [slow, bad]);
    const publisher = createPublisher({ kafka, topic });
    await publisher.connect();
    await publisher.publishRaw([{ key: "junk", value: Buffer.from("not json") }]);
    await publisher.disconnect();
    await publish(topic, [good]);
    const s = await startConsumer(topic, { dispatch });
    await committedTo(s, topic, 4);
    expect(passes).toBe(4); // the batch came back three times behind the deferred message
    expect(sent.filter((id) => id === bad.eventId)).toHaveLength(1);
    expect(sent.filter((id) => id === good.eventId)).toHaveLength(1);
    const letters = await readDeadLetters(
      kafka,
      topic,
      "the dead letters",
      (all) => all.length >= 2,
      {
        timeoutMs: 20_000,
        settleMs: 1_000,
      },
    );
    expect(letters.map((l) => l.headers[DLQ_HEADERS.reason]).sort()).toEqual([
      "delivery-failed",
      "invalid-message",
    ]);
  }, 60_000);
});

describe("claims of messages waiting behind others of their batch", () => {
  test("stay ours past the claim TTL while an earlier message is sent: another worker finds them busy; renewal stops with the batch", async () => {
    const topic = await newTopic();
    // One object key: one sequence, so the second waits for the first's send.
    const first = aNotification({ key: "r/1.pdf" });
    const second = aNotification({ key: "r/1.pdf" });
    let t = 0;
    const now = () => t;
    const state: MemoryState = new Map();
    const claimTtlMs = 1000;
    const stores = { ownerTtlMs: 3_600_000, claimTtlMs, state, now };
    const mine = createMemoryStore({ ...stores, owner: "mine" });
    const other = createMemoryStore({ ...stores, owner: "other" });
    const renewals = new Set<() => void>();
    const every = (fn: () => void) => {
      renewals.add(fn);
      return () => void renewals.delete(fn);
    };
    const { promise: held, resolve: release } = Promise.withResolvers<void>();
    cleanups.push(async () => {
      release();
      await mine.close();
      await other.close();
    });
    let sendingFirst = false;
    const { dispatch: deliver, sent } = aDispatcher();
    const dispatch = Object.assign(
      async (...args: Parameters<Dispatcher>) => {
        if (args[0].eventId === first.eventId) {
          sendingFirst = true;
          await held;
        }
        return deliver(...args);
      },
      { health: () => ({}) },
    ) as Dispatcher;
    await publish(topic, [first, second]);
    const s = await startConsumer(topic, {
      dispatch,
      store: mine,
      claimRenewal: { intervalMs: Math.floor(claimTtlMs / 3), every },
    });
    await waitFor("the first message is being sent", () => sendingFirst, { timeoutMs: 30_000 });
    // The first send outlasts the claim TTL; renewals run as their timer would.
    for (let step = 0; step < 4; step++) {
      t += 400;
      for (const renew of renewals) renew();
      await Bun.sleep(10);
    }
    expect(await other.claim([{ eventId: second.eventId, channel: "log" }])).toEqual(["busy"]);
    // The message being sent is renewed by the same batch renewal (no dispatcher wrapper here).
    expect(await other.claim([{ eventId: first.eventId, channel: "log" }])).toEqual(["busy"]);
    release();
    await committedTo(s, topic, 2);
    expect(sent).toEqual([first.eventId, second.eventId]);
    expect(renewals.size).toBe(0);
  }, 60_000);

  test("a claim a renewal found lost (taken by another worker meanwhile) is claimed again before its send: not sent, claimed-elsewhere", async () => {
    const topic = await newTopic();
    const first = aNotification({ key: "r/2.pdf" });
    const second = aNotification({ key: "r/2.pdf" });
    let t = 0;
    const state: MemoryState = new Map();
    const stores = { ownerTtlMs: 3_600_000, claimTtlMs: 1000, state, now: () => t };
    const mine = createMemoryStore({ ...stores, owner: "mine" });
    const other = createMemoryStore({ ...stores, owner: "other" });
    const renewals = new Set<() => void>();
    const every = (fn: () => void) => {
      renewals.add(fn);
      return () => void renewals.delete(fn);
    };
    const { promise: held, resolve: release } = Promise.withResolvers<void>();
    cleanups.push(async () => {
      release();
      await mine.close();
      await other.close();
    });
    let sendingFirst = false;
    const { dispatch: deliver, sent } = aDispatcher();
    const dispatch = Object.assign(
      async (...args: Parameters<Dispatcher>) => {
        if (args[0].eventId === first.eventId) {
          sendingFirst = true;
          await held;
        }
        return deliver(...args);
      },
      { health: () => ({}) },
    ) as Dispatcher;
    await publish(topic, [first, second]);
    const s = await startConsumer(topic, {
      dispatch,
      store: mine,
      claimRenewal: { intervalMs: 300, every },
    });
    await waitFor("the first message is being sent", () => sendingFirst, { timeoutMs: 30_000 });
    // The process stalled past the claim TTL (no renewal ran): another worker takes the claim.
    t += 1500;
    expect(await other.claim([{ eventId: second.eventId, channel: "log" }])).toEqual(["claimed"]);
    for (const renew of renewals) renew();
    await Bun.sleep(10);
    release();
    await waitFor(
      "the second deferred as claimed elsewhere",
      () => s.consumer.state().notFinal?.some((p) => p.reason === "claimed-elsewhere"),
      { timeoutMs: 30_000 },
    );
    expect(sent).not.toContain(second.eventId);
  }, 60_000);
});

describe("kafkajs restarts the consumer on its own", () => {
  test("after a restarting crash the consumer is running again: ready, and committing", async () => {
    const topic = await newTopic();
    const first = aNotification({ key: "e/1.pdf" });
    await publish(topic, [first]);
    // Few retries, so a retriable error thrown from eachBatch reaches kafkajs's restart quickly.
    const base = createKafka(
      {
        brokers: LOCAL_BROKERS.split(","),
        auth: "plaintext",
        ssl: false,
        topic,
        clientId: "fanda-consumer-test-restart",
      },
      {
        logger,
        logLevel: logLevel.NOTHING,
        overrides: { retry: { retries: 1, initialRetryTime: 100, maxRetryTime: 500 } },
      },
    );
    let crashes = 0;
    const o = observed(base, (c) => {
      c.on(c.events.CRASH, (e) => {
        if (e.payload.restart) crashes++;
      });
      const run = c.run.bind(c);
      c.run = (config) =>
        run({
          ...config,
          // What a broker restart outlasting the retries looks like to kafkajs: a retriable
          // error until it restarts the consumer.
          eachBatch: async (payload) => {
            if (crashes === 0)
              throw new KafkaJSError("injected: broker went away", { retriable: true });
            return config?.eachBatch?.(payload);
          },
        });
    });
    const s = await startConsumer(topic, { kafka: o.kafka });
    await waitFor("a restarting crash", () => crashes >= 1, { timeoutMs: 30_000 });
    await committedTo(s, topic, 1);
    await waitFor("running again", () => s.consumer.state().running, { timeoutMs: 30_000 });
    expect(s.consumer.state()).toMatchObject({ running: true, joined: true });
    expect(s.fatal).toEqual([]);
    // And it keeps consuming and committing.
    await publish(topic, [aNotification({ key: "e/2.pdf" })]);
    await committedTo(s, topic, 2);
  }, 60_000);
});

describe("a batch waiting for the delivery log", () => {
  test("keeps heartbeating: with the database down longer than the session timeout, the member is not evicted", async () => {
    const topic = await newTopic();
    const sent = Array.from({ length: 10 }, (_, i) => aNotification({ key: `f/${i}.pdf` }));
    await publish(topic, sent);
    const sqlite = createSqliteLog({ path: ":memory:" });
    await sqlite.migrate();
    cleanups.push(() => sqlite.close());
    // Down for five writes: the consumer's backoff waits about 11 s, the session timeout is 6 s.
    let failures = 5;
    let heartbeatsWhileDown = 0;
    const o = observed(kafka, (c) => {
      c.on(c.events.HEARTBEAT, () => {
        if (failures > 0 && failures < 5) heartbeatsWhileDown++;
      });
    });
    const deliveryLog: DeliveryLog = {
      ...sqlite,
      kind: sqlite.kind,
      healthy: () => failures === 0,
      async write(records) {
        if (failures > 0) {
          failures--;
          throw new Error("delivery log down (injected)");
        }
        await sqlite.write(records);
      },
    };
    // flushRecords 1: ten records are past the backpressure mark, so the batch waits for them.
    const s = await startConsumer(topic, { kafka: o.kafka, deliveryLog, flushRecords: 1 });
    await committedTo(s, topic, sent.length);
    expect(failures).toBe(0);
    expect(heartbeatsWhileDown).toBeGreaterThan(0);
    expect(o.counts.GROUP_JOIN).toBe(1);
    expect(o.counts.REBALANCING ?? 0).toBe(0);
  }, 60_000);
});

describe("start-up checks the topic and its DLQ", () => {
  test("a missing DLQ topic: start waits, readiness names the topic, and it starts once the topic exists", async () => {
    const topic = await newTopic({ dlq: false });
    await publish(topic, [aNotification({ key: "g/1.pdf" })]);
    const s = await startConsumer(topic, { awaitStart: false, topicCheckMs: 200 });
    const app = createHttpApp({
      consumerState: s.consumer.state,
      dependencies: () => ({
        idempotency: { kind: "memory", healthy: true },
        deliveryLog: { kind: "sqlite", healthy: true },
        channels: {},
      }),
      registry: s.metrics.registry,
    });
    const readyz = async () => {
      const res = await app.request("/readyz");
      return { status: res.status, reasons: ((await res.json()) as { reasons: string[] }).reasons };
    };
    await waitFor("the missing topic reported", () => s.consumer.state().missingTopics?.length);
    expect(s.consumer.state().missingTopics).toEqual([dlqTopicOf(topic)]);
    const r = await readyz();
    expect(r.status).toBe(503);
    expect(r.reasons.join("\n")).toContain(`${dlqTopicOf(topic)} does not exist`);
    expect(s.consumer.state().running).toBe(false);
    await ensureTopics(kafka, topic, { partitions: 1 });
    await s.start;
    expect(s.consumer.state()).toMatchObject({ running: true, missingTopics: [] });
    await committedTo(s, topic, 1);
    expect((await readyz()).status).toBe(200);
  }, 60_000);
});
