/**
 * The delivery engine under faults, against real Kafka, Redis and MariaDB (scripts/stack up):
 * the processor runs as its own process (`bun processor/src/main.ts`) so it can be killed.
 * Each test has its own topic and consumer group; the run has its own MySQL database.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { tmpdir } from "node:os";
import type { Kafka } from "kafkajs";
import mysql from "mysql2/promise";
import type { Notification } from "../../core/contract.ts";
import { createPublisher, createTopicsKnown, dlqTopicOf, ensureTopics } from "../../core/kafka.ts";
import { DLQ_HEADERS } from "../../processor/src/dlq.ts";
import { toNotification } from "../../producer/src/s3-event.ts";
import { type Sink, startSink } from "../../scripts/sink.ts";
import { startSlackServer } from "../../scripts/slack-server.ts";
import {
  buildProcessorForNode,
  freePort,
  localKafka,
  localProcessorEnv,
  PROCESSOR_TEMPLATES_DIR,
  type PrivateRedis,
  readDeadLetters,
  runCommand,
  startPrivateRedis,
} from "../support/local.ts";
import { waitFor } from "../support/wait.ts";

const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const mysqlServer = process.env.MYSQL_SERVER_URL ?? "mysql://root@127.0.0.1:3306";
const run = crypto.randomUUID().slice(0, 8);
const database = `fanda_engine_${run}`;
const kafka: Kafka = localKafka("fanda-test");
const children: ReturnType<typeof Bun.spawn>[] = [];
const privateRedis: PrivateRedis[] = [];
const topics: string[] = [];

/** A fresh topic (and DLQ) for one test. */
async function newTopic(partitions: number): Promise<string> {
  const topic = `fanda-engine-${run}-${topics.length}`;
  topics.push(topic);
  await ensureTopics(kafka, topic, { partitions });
  return topic;
}

/** `count` notifications with distinct keys (or `keys` given), published in order. */
async function publish(topic: string, keys: string[]): Promise<Notification[]> {
  const publisher = createPublisher({ kafka, topic });
  await publisher.connect();
  const notifications = keys.map((key, i) =>
    toNotification(
      {
        bucket: "fanda-engine",
        key,
        eventName: "ObjectCreated:Put",
        eventTime: new Date().toISOString(),
        sequencer: `${run}${i.toString(16).padStart(8, "0")}`,
      },
      "general",
    ),
  );
  await publisher.publish(notifications);
  await publisher.disconnect();
  return notifications;
}

interface Processor {
  proc: ReturnType<typeof Bun.spawn>;
  port: number;
  readyz(): Promise<{
    status: number;
    body: { reasons: string[]; consumer: { paused: unknown[] } };
  }>;
}

/** The processor bundled for Node, built once on first use. */
let nodeBundle: Promise<string> | undefined;
const buildNodeBundle = () => {
  nodeBundle ??= buildProcessorForNode(`${tmpdir()}/fanda-engine-${run}/processor.mjs`);
  return nodeBundle;
};

/** Starts `bun processor/src/main.ts` (or its Node bundle) and waits until it is ready. */
async function startProcessor(
  topic: string,
  sink: Sink,
  env: Record<string, string> = {},
  runtime: "bun" | "node" = "bun",
): Promise<Processor> {
  const port = await freePort();
  const command =
    runtime === "bun" ? ["bun", "processor/src/main.ts"] : ["node", await buildNodeBundle()];
  const proc = Bun.spawn(command, {
    env: localProcessorEnv(
      { topic, port, redisUrl, mysqlUrl: `${mysqlServer}/${database}` },
      {
        ENABLED_CHANNELS: "webhook",
        WEBHOOK_URL: sink.url,
        RETRY_BASE_MS: "10",
        RETRY_MAX_MS: "100",
        PAUSE_MIN_MS: "200",
        PAUSE_MAX_MS: "1000",
        IDEMPOTENCY_CLAIM_TTL_MS: "3000",
        IDEMPOTENCY_DONE_TTL_MS: "600000",
        // A SIGKILLed member's partitions move after this; the broker's minimum.
        KAFKA_SESSION_TIMEOUT_MS: "6000",
        LOG_LEVEL: "error",
        // The bundle lives outside the source tree, so it is told where the templates are.
        ...(runtime === "node" ? { TEMPLATES_DIR: PROCESSOR_TEMPLATES_DIR } : {}),
        ...env,
      },
    ),
    stdout: "ignore",
    stderr: "inherit",
  });
  children.push(proc);
  const readyz = async () => {
    const res = await fetch(`http://127.0.0.1:${port}/readyz`);
    return {
      status: res.status,
      body: (await res.json()) as Awaited<ReturnType<Processor["readyz"]>>["body"],
    };
  };
  const exited = proc.exited.then((code) => {
    throw new Error(`the processor exited (${code}) before it was ready`);
  });
  exited.catch(() => {}); // after readiness, an exit is the test's to check
  await Promise.race([
    waitFor("the processor to be ready", async () => (await readyz()).status === 200, {
      timeoutMs: 60_000,
    }),
    exited,
  ]);
  return { proc, port, readyz };
}

async function stopGracefully(p: Processor): Promise<number> {
  p.proc.kill("SIGTERM");
  return p.proc.exited;
}

/** How many of these notifications the delivery log has as delivered on `channel`. */
async function deliveredRows(sent: Notification[], channel: string): Promise<number> {
  const conn = await mysql.createConnection(`${mysqlServer}/${database}`);
  try {
    const [rows] = await conn.query(
      "SELECT COUNT(*) AS n FROM fanda_deliveries WHERE channel = ? AND status = 'delivered' AND event_id IN (?)",
      [channel, sent.map((n) => n.eventId)],
    );
    return Number((rows as { n: number }[])[0]?.n);
  } finally {
    await conn.end();
  }
}

const idsAt = (sink: Sink) => sink.received.map((r) => (r.body as Notification).eventId);

async function committedOffsets(groupId: string, topic: string): Promise<number[]> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const [t] = await admin.fetchOffsets({ groupId, topics: [topic] });
    return (t?.partitions ?? [])
      .sort((a, b) => a.partition - b.partition)
      .map((p) => Number(p.offset));
  } finally {
    await admin.disconnect();
  }
}

/** At least `atLeast` dead letters of `topic`, and any more already there. */
const dlqLetters = (topic: string, atLeast: number) =>
  readDeadLetters(kafka, topic, `${atLeast} dead letter(s)`, (all) => all.length >= atLeast, {
    timeoutMs: 20_000,
    settleMs: 500,
  });

beforeAll(async () => {
  const conn = await mysql.createConnection(mysqlServer);
  await conn.query(`CREATE DATABASE \`${database}\` CHARACTER SET utf8mb4`);
  await conn.end();
});

afterAll(async () => {
  for (const c of children) c.kill("SIGKILL");
  for (const r of privateRedis) await r.stop();
  await Promise.all(children.map((c) => c.exited));
  const admin = kafka.admin();
  await admin.connect();
  await admin.deleteTopics({ topics: topics.flatMap((t) => [t, dlqTopicOf(t)]) }).catch(() => {});
  await admin.disconnect();
  const conn = await mysql.createConnection(mysqlServer);
  await conn.query(`DROP DATABASE IF EXISTS \`${database}\``);
  await conn.end();
  rmSync(`${tmpdir()}/fanda-engine-${run}`, { recursive: true, force: true });
}, 60_000);

describe("delivery engine", () => {
  test("SIGKILL mid-batch, then restart: every message delivered, duplicates only for sends in flight", async () => {
    const topic = await newTopic(6);
    const sink = startSink();
    sink.setDelay(5);
    const keys = Array.from({ length: 300 }, (_, i) => `kill/${run}/${i}.txt`);
    const sent = await publish(topic, keys);
    const first = await startProcessor(topic, sink);
    await waitFor("some deliveries", () => sink.received.length >= 60, { timeoutMs: 30_000 });
    first.proc.kill("SIGKILL");
    await first.proc.exited;
    const second = await startProcessor(topic, sink);
    await waitFor(
      "every message delivered after the restart",
      () => {
        const got = new Set(idsAt(sink));
        return sent.every((n) => got.has(n.eventId));
      },
      { timeoutMs: 60_000 },
    );
    const duplicates = sink.received.length - new Set(idsAt(sink)).size;
    console.log(
      `SIGKILL test: ${sink.received.length} deliveries for 300 messages, ${duplicates} duplicate(s)`,
    );
    // At most what was in flight when the process died: 3 partitions × 32 messages.
    expect(duplicates).toBeLessThanOrEqual(96);
    // The second processor takes over once the dead member's session expires, finds the
    // deliveries done (or sends what was not), and commits everything.
    await waitFor(
      "every offset committed",
      async () =>
        (await committedOffsets(`${topic}-processor`, topic)).reduce((a, b) => a + b, 0) === 300,
      { timeoutMs: 60_000 },
    );
    expect(await stopGracefully(second)).toBe(0);
    const conn = await mysql.createConnection(`${mysqlServer}/${database}`);
    const [rows] = await conn.query(
      "SELECT COUNT(DISTINCT event_id) AS n FROM fanda_deliveries WHERE status = 'delivered' AND object_key LIKE ?",
      [`kill/${run}/%`],
    );
    await conn.end();
    expect((rows as { n: number }[])[0]?.n).toBe(300);
    await sink.stop();
  }, 120_000);

  test("a poison message between good ones is dead-lettered; the good ones keep their order", async () => {
    const topic = await newTopic(1);
    const sink = startSink();
    const producer = kafka.producer();
    await producer.connect();
    const [a, b] = [`order/${run}/a.txt`, `order/${run}/b.txt`];
    const good = await publish(topic, [a]);
    await producer.send({ topic, messages: [{ key: "fanda-engine/poison", value: "{not json" }] });
    good.push(...(await publish(topic, [b])));
    await producer.disconnect();
    const p = await startProcessor(topic, sink);
    await waitFor("both good messages", () => sink.received.length >= 2);
    expect(idsAt(sink)).toEqual(good.map((n) => n.eventId));
    const letters = await dlqLetters(topic, 1);
    expect(
      letters.map((l) => [
        l.value,
        l.headers[DLQ_HEADERS.reason],
        l.headers[DLQ_HEADERS.errorClass],
      ]),
    ).toEqual([["{not json", "invalid-message", "InvalidInputError"]]);
    await waitFor(
      "all three committed",
      async () => (await committedOffsets(`${topic}-processor`, topic))[0] === 3,
    );
    expect(await stopGracefully(p)).toBe(0);
    await sink.stop();
  }, 60_000);

  test("a channel that is down defers and pauses instead of dead-lettering, and catches up when it recovers", async () => {
    const topic = await newTopic(1);
    const sink = startSink();
    sink.failNext(503, Number.POSITIVE_INFINITY);
    const sent = await publish(
      topic,
      Array.from({ length: 20 }, (_, i) => `down/${run}/${i}.txt`),
    );
    // One message at a time, so the breaker arithmetic is exact: the first message exhausts
    // 2 attempts (2 in a row < 4) and is dead-lettered; the second reaches 4 and is deferred.
    const p = await startProcessor(topic, sink, {
      DELIVERY_MAX_ATTEMPTS: "2",
      BREAKER_THRESHOLD: "4",
      PROCESSOR_CONCURRENCY: "1",
      PARTITIONS_CONCURRENCY: "1",
    });
    await waitFor("the partition to be paused", async () => {
      const { body } = await p.readyz();
      return body.consumer.paused.length > 0;
    });
    expect(await committedOffsets(`${topic}-processor`, topic)).toEqual([1]);
    sink.failNext(503, 0);
    await waitFor("the other 19 delivered", () => new Set(idsAt(sink)).size >= 19, {
      timeoutMs: 30_000,
    });
    expect(new Set(idsAt(sink))).toEqual(new Set(sent.slice(1).map((n) => n.eventId)));
    const letters = await dlqLetters(topic, 1);
    expect(letters).toHaveLength(1);
    expect(letters[0]?.headers[DLQ_HEADERS.channels]).toBe("webhook");
    expect(letters[0]?.headers[DLQ_HEADERS.attempts]).toBe("2");
    expect(JSON.parse(letters[0]?.value ?? "{}").eventId).toBe(sent[0]?.eventId);
    await waitFor(
      "all committed",
      async () => (await committedOffsets(`${topic}-processor`, topic))[0] === 20,
    );
    expect(await stopGracefully(p)).toBe(0);
    await sink.stop();
  }, 90_000);

  test("offsets are never committed ahead of outcomes", async () => {
    const topic = await newTopic(1);
    const sink = startSink();
    const release = sink.hold();
    await publish(topic, [`hold/${run}/1.txt`, `hold/${run}/2.txt`, `hold/${run}/3.txt`]);
    const p = await startProcessor(topic, sink);
    await waitFor("a delivery held at the sink", () => sink.held() > 0);
    // While the sends hang, well past a commit interval, nothing is committed.
    await Bun.sleep(1500);
    expect(await committedOffsets(`${topic}-processor`, topic)).toEqual([-1]);
    release();
    await waitFor(
      "all three committed",
      async () => (await committedOffsets(`${topic}-processor`, topic))[0] === 3,
    );
    expect(sink.received).toHaveLength(3);
    expect(await stopGracefully(p)).toBe(0);
    await sink.stop();
  }, 60_000);

  test("Redis restarted during consumption: the processor waits, reports not-ready, and loses nothing", async () => {
    const topic = await newTopic(3);
    const sink = startSink();
    sink.setDelay(3);
    const redis = await startPrivateRedis();
    privateRedis.push(redis);
    const p = await startProcessor(topic, sink, { REDIS_URL: redis.url });
    const sent = await publish(
      topic,
      Array.from({ length: 150 }, (_, i) => `redis/${run}/${i}.txt`),
    );
    await waitFor("some deliveries", () => sink.received.length >= 30);
    await redis.kill();
    await waitFor("not-ready because of Redis", async () => {
      const { status, body } = await p.readyz();
      return status === 503 && body.reasons.some((r) => r.includes("idempotency store (redis)"));
    });
    redis.start();
    await waitFor(
      "every message delivered after Redis is back",
      () => {
        const got = new Set(idsAt(sink));
        return sent.every((n) => got.has(n.eventId));
      },
      { timeoutMs: 60_000 },
    );
    await waitFor("ready again", async () => (await p.readyz()).status === 200);
    expect(await stopGracefully(p)).toBe(0);
    await sink.stop();
  }, 120_000);

  test("a burst of 300 uploads to one Slack channel at Slack's own limit (1/s) arrives in a few digests, the webhook alongside", async () => {
    const topic = await newTopic(6);
    const sink = startSink();
    const slack = startSlackServer({ token: "xoxb-engine", ratePerSecond: 1, burst: 3 });
    try {
      const processor = await startProcessor(topic, sink, {
        ENABLED_CHANNELS: "webhook,slack",
        SLACK_BOT_TOKEN: "xoxb-engine",
        SLACK_API_URL: slack.apiUrl,
        SLACK_DEFAULT_CHANNEL: "#uploads",
      });
      const sent = await publish(
        topic,
        Array.from({ length: 300 }, (_, i) => `reports/positive/burst-${run}-${i}.pdf`),
      );
      // Without digests this would take five minutes at one message per second.
      await waitFor(
        "every upload in a Slack message",
        () => slack.carriedEventIds().length >= 300,
        {
          timeoutMs: 60_000,
        },
      );
      console.log(
        `slack: ${slack.messages.length} messages carried 300 uploads (${slack.rateLimited()} answered 429)`,
      );
      // A 429 now and then is fine (jitter against an equal limit): it is waited out and retried.
      expect(slack.messages.length).toBeLessThan(60);
      await waitFor("every webhook", () => new Set(idsAt(sink)).size >= 300);
      expect(await stopGracefully(processor)).toBe(0);
      // Each upload in exactly one Slack message.
      expect(slack.carriedEventIds().sort()).toEqual(sent.map((n) => n.eventId).sort());
      expect(await deliveredRows(sent, "slack")).toBe(300);
    } finally {
      await slack.stop();
    }
  }, 90_000);

  test("the same code bundled for Node delivers every message once, logs it, and drains on SIGTERM", async () => {
    const topic = await newTopic(3);
    const sink = startSink();
    const keys = Array.from({ length: 40 }, (_, i) => `node/${run}/${i}.txt`);
    const processor = await startProcessor(topic, sink, {}, "node");
    const sent = await publish(topic, keys);
    await waitFor("every message delivered by the Node processor", () => {
      const got = new Set(idsAt(sink));
      return sent.every((n) => got.has(n.eventId));
    });
    const metrics = await (await fetch(`http://127.0.0.1:${processor.port}/metrics`)).text();
    expect(metrics).toContain('nodejs_version_info{version="v');
    expect(await stopGracefully(processor)).toBe(0);
    expect(idsAt(sink).sort()).toEqual(sent.map((n) => n.eventId).sort());
    expect(await deliveredRows(sent, "webhook")).toBe(40);
  });

  test("a SIGTERM while start-up waits for a missing DLQ topic stops the processor cleanly (exit 0)", async () => {
    const topic = `fanda-engine-${run}-${topics.length}`;
    topics.push(topic);
    const admin = kafka.admin();
    await admin.connect();
    try {
      // The topic without its dead-letter topic: start-up waits for it.
      await createTopicsKnown(admin, [{ topic, numPartitions: 1 }]);
    } finally {
      await admin.disconnect();
    }
    const port = await freePort();
    const proc = Bun.spawn(["bun", "processor/src/main.ts"], {
      env: localProcessorEnv(
        { topic, port, redisUrl, mysqlUrl: `${mysqlServer}/${database}` },
        { ENABLED_CHANNELS: "log", LOG_LEVEL: "error" },
      ),
      stdout: "ignore",
      stderr: "inherit",
    });
    children.push(proc);
    await waitFor("readiness to name the missing DLQ topic", async () => {
      const res = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined);
      return res !== undefined && (await res.text()).includes(dlqTopicOf(topic));
    });
    proc.kill("SIGTERM");
    // Before, the handlers were installed only once start-up had finished: the default
    // action of SIGTERM ended the process (143) without draining or closing anything.
    expect(await proc.exited).toBe(0);
  }, 60_000);

  test("on Node without MYSQL_URL the processor refuses to start and says why", async () => {
    const result = await runCommand(["node", await buildNodeBundle()], {
      env: { ...process.env, ENABLED_CHANNELS: "log", MYSQL_URL: undefined, PORT: "0" },
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(
      "MYSQL_URL: is required on Node (the embedded SQLite delivery log needs Bun)",
    );
  });
});
