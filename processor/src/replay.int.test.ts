/**
 * Replay consults the delivery log per (event, channel), against the local Kafka and MariaDB:
 * a dead letter whose failed channels have delivered since is not replayed, and a replayed
 * event, claimed as the processor claims (done marks long expired: an empty store, with the
 * delivery log as second line), resends only the channels without a delivered row.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import mysql from "mysql2/promise";
import { decodeNotification, messageKey, type Notification } from "../../core/contract.ts";
import { createPublisher, ensureTopics } from "../../core/kafka.ts";
import { createLogger } from "../../core/log.ts";
import { localKafka } from "../../test/support/local.ts";
import { aNotification } from "../../test/support/notifications.ts";
import { waitFor } from "../../test/support/wait.ts";
import { createMysqlLog, type DeliveryLog, type DeliveryRecord } from "./delivery-log/index.ts";
import { createDeadLetterQueue } from "./dlq.ts";
import { createMemoryStore, withDeliveryLogFallback } from "./idempotency.ts";
import { replayDlq, replayLog } from "./replay.ts";

const server = process.env.MYSQL_SERVER_URL ?? "mysql://root@127.0.0.1:3306";
const database = `fanda_test_${crypto.randomUUID().slice(0, 8)}`;
const topic = `fanda-replay-test-${crypto.randomUUID().slice(0, 8)}`;
const kafka = localKafka("replay-test", { topic });
const logger = createLogger({ level: "error", ns: "replay-test" });
const publisher = createPublisher({ kafka, topic });
let log: DeliveryLog;

beforeAll(async () => {
  const conn = await mysql.createConnection(server);
  await conn.query(`CREATE DATABASE \`${database}\` CHARACTER SET utf8mb4`);
  await conn.end();
  log = createMysqlLog({ url: `${server}/${database}` });
  await log.migrate();
  await ensureTopics(kafka, topic, { partitions: 1, replicationFactor: 1 });
  await publisher.connect();
}, 60_000);

afterAll(async () => {
  await publisher.disconnect();
  await log.close();
  const conn = await mysql.createConnection(server);
  await conn.query(`DROP DATABASE IF EXISTS \`${database}\``);
  await conn.end();
  const admin = kafka.admin();
  await admin.connect();
  await admin.deleteTopics({ topics: [topic, `${topic}.dlq`] }).catch(() => {});
  await admin.disconnect();
});

const at = new Date("2026-11-01T10:00:00.000Z");
const row = (n: Notification, channel: string, status: "delivered" | "failed"): DeliveryRecord => ({
  notification: n,
  channel,
  status,
  attempts: 1,
  ...(status === "failed" ? { lastError: "503" } : { providerId: "p" }),
  firstAttemptAt: at,
  finishedAt: at,
});
const fresh = () => aNotification({ eventId: crypto.randomUUID().replace(/-/g, "") });

/** The notifications the main topic holds, read from the beginning. */
async function mainTopic(count: number): Promise<Notification[]> {
  const consumer = kafka.consumer({ groupId: `replay-test-${crypto.randomUUID()}` });
  const seen: Notification[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }) => {
        seen.push(decodeNotification(message.value));
      },
    });
    await waitFor(`${count} messages on ${topic}`, async () => seen.length >= count, {
      timeoutMs: 30_000,
    });
  } finally {
    await consumer.disconnect();
  }
  return seen;
}

test("replay sends again only what has no delivered row: dead letters delivered since are skipped, and a replayed event resends only its undelivered channels", async () => {
  // A: slack delivered, webhook failed and dead-lettered.
  // B: webhook dead-lettered, then delivered by a later retry.
  // C: webhook failed, only in the log.
  const [a, b, c] = [fresh(), fresh(), fresh()];
  await log.write([
    row(a, "slack", "delivered"),
    row(a, "webhook", "failed"),
    row(b, "webhook", "delivered"),
    row(c, "webhook", "failed"),
  ]);
  const dlq = createDeadLetterQueue({ kafka, topic });
  await dlq.connect();
  await dlq.send(
    [a, b].map((n, i) => ({
      topic,
      partition: 0,
      message: {
        key: Buffer.from(messageKey(n)),
        value: Buffer.from(JSON.stringify(n)),
        headers: { "content-type": "application/json" },
        offset: String(i),
      },
      reason: "delivery-failed" as const,
      error: "503",
      failedChannels: ["webhook"],
      attempts: [5],
    })),
  );
  await dlq.disconnect();

  const fromDlq = await replayDlq({ kafka, topic, publisher, logger, deliveryLog: log });
  expect(fromDlq.eventIds).toEqual([a.eventId]);
  expect(fromDlq).toMatchObject({ scanned: 2, replayed: 1, skipped: 1, alreadyDelivered: 1 });

  const fromLog = await replayLog({ deliveryLog: log, publisher, logger });
  expect(fromLog.eventIds.sort()).toEqual([a.eventId, c.eventId].sort());

  // The processor claims each replayed event's channels; its done marks expired long ago.
  const replayed = await mainTopic(3);
  expect(replayed.map((n) => n.eventId).sort()).toEqual([a.eventId, a.eventId, c.eventId].sort());
  const store = withDeliveryLogFallback(createMemoryStore(), log);
  const claims = await store.claim(
    [a, c].flatMap((n) => ["slack", "webhook"].map((channel) => ({ eventId: n.eventId, channel }))),
  );
  expect(claims).toEqual(["done", "claimed", "claimed", "claimed"]);
  await store.close();
}, 90_000);
