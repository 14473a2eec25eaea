/** The MySQL delivery log against the machine's MariaDB, in a database of its own per run. */
import { afterAll, beforeAll, expect, test } from "bun:test";
import fc from "fast-check";
import mysql from "mysql2/promise";
import { aNotification } from "../../../test/support/notifications.ts";
import { deliveryLogConformance } from "./conformance.ts";
import {
  createMysqlLog,
  type DeliveryLog,
  DeliveryLogUnavailableError,
  type DeliveryRecord,
  keyColumns,
  rawOf,
  TRUNCATED,
} from "./index.ts";

const server = process.env.MYSQL_SERVER_URL ?? "mysql://root@127.0.0.1:3306";
const database = `fanda_test_${crypto.randomUUID().slice(0, 8)}`;
const logs: DeliveryLog[] = [];

beforeAll(async () => {
  const conn = await mysql.createConnection(server);
  await conn.query(`CREATE DATABASE \`${database}\` CHARACTER SET utf8mb4`);
  await conn.end();
});

afterAll(async () => {
  await Promise.all(logs.map((l) => l.close().catch(() => {})));
  const conn = await mysql.createConnection(server);
  await conn.query(`DROP DATABASE IF EXISTS \`${database}\``);
  await conn.end();
});

deliveryLogConformance("mysql", async () => {
  const log = createMysqlLog({ url: `${server}/${database}` });
  logs.push(log);
  await log.migrate();
  return log;
});

test("concurrent processors migrate once", async () => {
  const many = Array.from({ length: 4 }, () => createMysqlLog({ url: `${server}/${database}` }));
  logs.push(...many);
  await Promise.all(many.map((l) => l.migrate()));
  const conn = await mysql.createConnection(`${server}/${database}`);
  const [rows] = await conn.query("SELECT version FROM fanda_schema_migrations");
  await conn.end();
  expect(rows as unknown).toEqual([{ version: 1 }, { version: 2 }]);
});

test("an unreachable database is a retriable error and unhealthy", async () => {
  const log = createMysqlLog({ url: "mysql://root@127.0.0.1:1/nowhere" });
  logs.push(log);
  const err = await log.migrate().catch((e: unknown) => e);
  expect(err).toBeInstanceOf(DeliveryLogUnavailableError);
  expect((err as DeliveryLogUnavailableError).retriable).toBe(true);
  expect(log.healthy()).toBe(false);
});

/** The stored row of one (event, channel), as MariaDB has it. */
async function storedRow(eventId: string, channel: string) {
  const conn = await mysql.createConnection({ uri: `${server}/${database}`, timezone: "Z" });
  try {
    const key = keyColumns({ eventId, channel });
    const [rows] = await conn.query(
      "SELECT * FROM fanda_deliveries WHERE event_id = ? AND channel = ?",
      [key.eventId, key.channel],
    );
    return (rows as Record<string, unknown>[])[0];
  } finally {
    await conn.end();
  }
}

const aRecord = (over: Partial<DeliveryRecord> = {}): DeliveryRecord => ({
  notification: aNotification({ eventId: crypto.randomUUID().replace(/-/g, "") }),
  channel: "webhook",
  status: "delivered",
  attempts: 1,
  firstAttemptAt: new Date(Date.UTC(2026, 10, 27, 10)),
  finishedAt: new Date(Date.UTC(2026, 10, 27, 10, 0, 1)),
  ...over,
});

test("a delivered row whose values fit no column is written with its batch; the originals are in raw", async () => {
  const log = createMysqlLog({ url: `${server}/${database}` });
  logs.push(log);
  await log.migrate();
  const rows = Array.from({ length: 100 }, () => aRecord({ providerId: "p" }));
  const hostile = aRecord({
    providerId: `req-${"x".repeat(300)}`,
    notification: aNotification({
      eventId: crypto.randomUUID().replace(/-/g, ""),
      key: `deep/${"d".repeat(1100)}`,
      uploadTime: "9999-12-31T23:59:59.999999Z",
    }),
  });
  hostile.notification.uploadTime = "+010000-01-01T00:00:00.000Z";
  rows[13] = hostile;
  await log.write(rows);
  for (const r of rows) {
    expect(await storedRow(r.notification.eventId, r.channel)).toBeDefined();
  }
  const stored = (await storedRow(hostile.notification.eventId, "webhook")) ?? {};
  expect(String(stored.provider_id).endsWith(TRUNCATED)).toBe(true);
  expect(String(stored.object_key).endsWith(TRUNCATED)).toBe(true);
  expect((stored.upload_time as Date).toISOString()).toBe("9999-12-31T23:59:59.999Z");
  const raw = rawOf(stored.raw as string);
  expect(raw.providerId).toBe(hostile.providerId);
  expect(raw.objectKey).toBe(hostile.notification.objectKey);
  expect(raw.uploadTime).toBe("+010000-01-01T00:00:00.000Z");
});

test("property: MariaDB accepts any record (huge, unicode, NUL, any date)", async () => {
  const log = createMysqlLog({ url: `${server}/${database}` });
  logs.push(log);
  await log.migrate();
  const text = (max: number) =>
    fc.oneof(
      fc.string({ unit: "binary", maxLength: max }),
      fc.string({ unit: "grapheme", maxLength: max }),
      fc.constantFrom("\u0000", "\ud800", "a\u0000b", "\udfff\ud800", "𝒳".repeat(2000)),
    );
  const date = fc.date({ noInvalidDate: false });
  const rec = fc.record({
    eventId: fc.oneof(
      fc.string({ unit: "binary", maxLength: 80 }),
      fc.stringMatching(/^[0-9a-f]{32}$/),
    ),
    channel: text(60),
    category: text(200),
    bucket: text(100),
    key: fc.oneof(text(3000), fc.string({ unit: "binary", minLength: 70_000, maxLength: 70_001 })),
    uploadTime: fc.oneof(
      text(40),
      date.map((d) => (Number.isNaN(d.getTime()) ? "x" : d.toISOString())),
    ),
    status: fc.constantFrom("delivered" as const, "failed" as const),
    attempts: fc.oneof(fc.integer(), fc.double()),
    lastError: fc.option(text(9000), { nil: undefined }),
    providerId: fc.option(text(600), { nil: undefined }),
    first: date,
    finished: date,
  });
  await fc.assert(
    fc.asyncProperty(fc.array(rec, { minLength: 1, maxLength: 5 }), async (recs) => {
      const records: DeliveryRecord[] = recs.map((r) => ({
        notification: {
          ...aNotification({ key: r.key, bucket: r.bucket }),
          eventId: r.eventId,
          category: r.category,
          uploadTime: r.uploadTime,
        },
        channel: r.channel,
        status: r.status,
        attempts: r.attempts,
        ...(r.lastError === undefined ? {} : { lastError: r.lastError }),
        ...(r.providerId === undefined ? {} : { providerId: r.providerId }),
        firstAttemptAt: r.first,
        finishedAt: r.finished,
      }));
      await log.write(records);
    }),
    { numRuns: 60 },
  );
}, 120_000);
