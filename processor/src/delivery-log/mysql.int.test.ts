/** The MySQL delivery log against the machine's MariaDB, in a database of its own per run. */
import { afterAll, beforeAll, expect, test } from "bun:test";
import mysql from "mysql2/promise";
import { deliveryLogConformance } from "./conformance.ts";
import { createMysqlLog, type DeliveryLog, DeliveryLogUnavailableError } from "./index.ts";

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
  expect(rows as unknown).toEqual([{ version: 1 }]);
});

test("an unreachable database is a retriable error and unhealthy", async () => {
  const log = createMysqlLog({ url: "mysql://root@127.0.0.1:1/nowhere" });
  logs.push(log);
  const err = await log.migrate().catch((e: unknown) => e);
  expect(err).toBeInstanceOf(DeliveryLogUnavailableError);
  expect((err as DeliveryLogUnavailableError).retriable).toBe(true);
  expect(log.healthy()).toBe(false);
});
