import { expect, test } from "bun:test";
import { deliveryLogConformance } from "./conformance.ts";
import { createMysqlLog, createSqliteLog } from "./index.ts";

deliveryLogConformance("sqlite", async () => {
  const log = createSqliteLog({ path: ":memory:" });
  await log.migrate();
  return log;
});

test.each([
  ["not a url", "MYSQL_URL: not a valid URL"],
  ["postgres://x/db", "MYSQL_URL: expected mysql://"],
  ["mysql://root@127.0.0.1:3306", "MYSQL_URL: no database name in the path"],
])("the MySQL log refuses %s", (url, message) => {
  expect(() => createMysqlLog({ url })).toThrow(message);
});

test("the SQLite log refuses an empty path", () => {
  expect(() => createSqliteLog({ path: "" })).toThrow("AUDIT_SQLITE_PATH");
});
