/** The delivery log: its contract (./log.ts) and its two backends. */
export * from "./log.ts";
export { createMysqlLog } from "./mysql.ts";
export { createSqliteLog } from "./sqlite.ts";
