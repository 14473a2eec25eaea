/**
 * The delivery log as the idempotency store's second line, against real Redis (a private
 * server, emptied with FLUSHALL as a failover to an empty replica does) and real MariaDB.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { Redis } from "ioredis";
import mysql from "mysql2/promise";
import { type PrivateRedis, startPrivateRedis } from "../../test/support/local.ts";
import { aNotification } from "../../test/support/notifications.ts";
import { waitFor } from "../../test/support/wait.ts";
import { createMysqlLog, type DeliveryLog } from "./delivery-log/index.ts";
import { createRedisStore, withDeliveryLogFallback } from "./idempotency.ts";

const server = process.env.MYSQL_SERVER_URL ?? "mysql://root@127.0.0.1:3306";
const database = `fanda_test_${crypto.randomUUID().slice(0, 8)}`;
let redis: PrivateRedis;
let log: DeliveryLog;

beforeAll(async () => {
  const conn = await mysql.createConnection(server);
  await conn.query(`CREATE DATABASE \`${database}\` CHARACTER SET utf8mb4`);
  await conn.end();
  log = createMysqlLog({ url: `${server}/${database}` });
  await log.migrate();
  redis = await startPrivateRedis();
});

afterAll(async () => {
  await log.close().catch(() => {});
  await redis.stop();
  const conn = await mysql.createConnection(server);
  await conn.query(`DROP DATABASE IF EXISTS \`${database}\``);
  await conn.end();
});

test("Redis emptied after a delivery: the claim finds the delivered row and says done, and the done mark is back", async () => {
  const store = withDeliveryLogFallback(createRedisStore({ url: redis.url }), log);
  const n = aNotification({ eventId: crypto.randomUUID().replace(/-/g, "") });
  const k = { eventId: n.eventId, channel: "webhook" };
  const fresh = { eventId: crypto.randomUUID().replace(/-/g, ""), channel: "webhook" };
  await waitFor("redis", async () => (await store.claim([k]).catch(() => []))[0] === "claimed");
  await store.complete([k]);
  const at = new Date();
  await log.write([
    {
      notification: n,
      channel: "webhook",
      status: "delivered",
      attempts: 1,
      firstAttemptAt: at,
      finishedAt: at,
    },
  ]);
  const admin = new Redis(redis.url);
  await admin.flushall();
  expect(await store.claim([k, fresh])).toEqual(["done", "claimed"]);
  // Set again in Redis: a store without the log sees it too.
  const plain = createRedisStore({ url: redis.url, owner: "plain" });
  expect(await plain.claim([k])).toEqual(["done"]);
  admin.disconnect();
  await Promise.all([store.close(), plain.close()]);
}, 30_000);

test("while the log is unreachable, a claim behaves as without it (claimed)", async () => {
  const unreachable = createMysqlLog({ url: "mysql://root@127.0.0.1:1/nowhere" });
  const errors: unknown[] = [];
  const store = withDeliveryLogFallback(createRedisStore({ url: redis.url }), unreachable, {
    onUnavailable: (err) => errors.push(err),
  });
  const k = { eventId: crypto.randomUUID().replace(/-/g, ""), channel: "webhook" };
  // Known down (never reached): not even asked.
  expect(await store.claim([k])).toEqual(["claimed"]);
  expect(errors).toEqual([]);
  // Asked anyway (as when it went down since its last answer): the failure leaves claims as they are.
  const asking = withDeliveryLogFallback(
    createRedisStore({ url: redis.url }),
    { delivered: (keys) => unreachable.delivered(keys) },
    { onUnavailable: (err) => errors.push(err) },
  );
  const k2 = { eventId: crypto.randomUUID().replace(/-/g, ""), channel: "webhook" };
  expect(await asking.claim([k2])).toEqual(["claimed"]);
  expect(errors).toHaveLength(1);
  await asking.close();
  await store.close();
  await unreachable.close();
}, 30_000);
