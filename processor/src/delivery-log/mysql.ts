/** The MySQL (RDS) backend of the delivery log, through a mysql2 pool. */
import mysql from "mysql2/promise";
import { ConfigError, createHealthGate } from "../errors.ts";
import {
  type DeliveryLog,
  DeliveryLogUnavailableError,
  deliveredChunks,
  deliveredOf,
  keyColumns,
  row,
  toFailed,
} from "./log.ts";

/** Versioned schema migrations; append only, never edit an applied one. */
const MYSQL_MIGRATIONS: { version: number; name: string; sql: string }[] = [
  {
    version: 1,
    name: "create fanda_deliveries",
    sql: `CREATE TABLE IF NOT EXISTS fanda_deliveries (
      id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
      event_id CHAR(32) NOT NULL,
      channel VARCHAR(32) NOT NULL,
      category VARCHAR(64) NOT NULL,
      bucket VARCHAR(63) NOT NULL,
      object_key VARCHAR(1024) NOT NULL,
      status VARCHAR(16) NOT NULL,
      attempts INT NOT NULL,
      last_error TEXT NULL,
      provider_id VARCHAR(255) NULL,
      upload_time DATETIME(3) NOT NULL,
      first_attempt_at DATETIME(3) NOT NULL,
      finished_at DATETIME(3) NOT NULL,
      payload TEXT NULL,
      UNIQUE KEY uq_fanda_deliveries_event_channel (event_id, channel),
      KEY ix_fanda_deliveries_status_finished (status, finished_at)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
  },
  {
    // The original values of a row's fields that did not fit their columns (log.ts `row`).
    // Adding a nullable column is an instant change: no table copy.
    version: 2,
    name: "add fanda_deliveries.raw",
    sql: "ALTER TABLE fanda_deliveries ADD COLUMN raw MEDIUMTEXT NULL",
  },
];

/**
 * One statement carries at most this much row data: far below max_allowed_packet (16 MiB on
 * MariaDB, 64 MiB on MySQL 8 and RDS), so a batch of large rows is never refused for its size.
 */
const STATEMENT_BYTES = 4 * 1024 * 1024;

/** A row's size in a statement, roughly (utf8mb4 texts at three bytes a code unit). */
const sizeOf = (values: unknown[]) =>
  values.reduce<number>((sum, v) => sum + (typeof v === "string" ? v.length * 3 : 0) + 16, 64);

/**
 * Creates the MySQL delivery log.
 * @param options.url `mysql://user:password@host:port/database`
 * @throws ConfigError for a URL that is not mysql://
 * @example
 * const log = createMysqlLog({ url: process.env.MYSQL_URL });
 * await log.migrate();
 */
export function createMysqlLog(options: { url: string; poolSize?: number }): DeliveryLog {
  let url: URL;
  try {
    url = new URL(options.url);
  } catch {
    throw new ConfigError("audit", ["MYSQL_URL: not a valid URL"]);
  }
  if (url.protocol !== "mysql:") throw new ConfigError("audit", ["MYSQL_URL: expected mysql://"]);
  if (url.pathname.length <= 1)
    throw new ConfigError("audit", ["MYSQL_URL: no database name in the path"]);
  const pool = mysql.createPool({
    uri: options.url,
    connectionLimit: options.poolSize ?? 4,
    connectTimeout: 5000,
    timezone: "Z",
    dateStrings: false,
  });
  const gate = createHealthGate((op, cause) => new DeliveryLogUnavailableError(op, cause), false);
  const run = gate.run;
  return {
    kind: "mysql",
    migrate: () =>
      run("migrating", async () => {
        const conn = await pool.getConnection();
        try {
          // One processor migrates at a time; the others wait, then find nothing to do.
          const [lock] = await conn.query("SELECT GET_LOCK('fanda_migrations', 60) AS got");
          if ((lock as { got: number }[])[0]?.got !== 1)
            throw new Error("could not take the migration lock");
          try {
            await conn.query(`CREATE TABLE IF NOT EXISTS fanda_schema_migrations (
              version INT NOT NULL PRIMARY KEY,
              name VARCHAR(200) NOT NULL,
              applied_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
            ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`);
            const [rows] = await conn.query("SELECT version FROM fanda_schema_migrations");
            const applied = new Set((rows as { version: number }[]).map((r) => r.version));
            for (const m of MYSQL_MIGRATIONS) {
              if (applied.has(m.version)) continue;
              await conn.query(m.sql);
              await conn.query(
                "INSERT INTO fanda_schema_migrations (version, name) VALUES (?, ?)",
                [m.version, m.name],
              );
            }
          } finally {
            await conn.query("SELECT RELEASE_LOCK('fanda_migrations')");
          }
        } finally {
          conn.release();
        }
      }),
    write: (records) =>
      run("writing", async () => {
        if (records.length === 0) return;
        const values = records
          .map(row)
          .map((r) => [
            r.eventId,
            r.channel,
            r.category,
            r.bucket,
            r.objectKey,
            r.status,
            r.attempts,
            r.lastError,
            r.providerId,
            r.uploadTime,
            r.firstAttemptAt,
            r.finishedAt,
            r.payload,
            r.raw,
          ]);
        const chunks: unknown[][][] = [[]];
        let size = 0;
        for (const v of values) {
          const s = sizeOf(v);
          const last = chunks[chunks.length - 1] as unknown[][];
          if (last.length > 0 && size + s > STATEMENT_BYTES) {
            chunks.push([v]);
            size = s;
          } else {
            last.push(v);
            size += s;
          }
        }
        const conn = await pool.getConnection();
        try {
          // Several statements commit together: a retry after a failure adds no attempts twice.
          if (chunks.length > 1) await conn.beginTransaction();
          for (const chunk of chunks) {
            await conn.query(
              `INSERT INTO fanda_deliveries (event_id, channel, category, bucket, object_key, status,
                 attempts, last_error, provider_id, upload_time, first_attempt_at, finished_at,
                 payload, raw)
               VALUES ?
               ON DUPLICATE KEY UPDATE
                 attempts = LEAST(attempts + VALUES(attempts), 2147483647),
                 last_error = IF(status = 'delivered', last_error, VALUES(last_error)),
                 provider_id = COALESCE(VALUES(provider_id), provider_id),
                 finished_at = IF(status = 'delivered', finished_at, VALUES(finished_at)),
                 payload = IF(status = 'delivered' OR VALUES(status) = 'delivered', NULL, VALUES(payload)),
                 raw = COALESCE(VALUES(raw), raw),
                 status = IF(status = 'delivered', 'delivered', VALUES(status))`,
              [chunk],
            );
          }
          if (chunks.length > 1) await conn.commit();
        } catch (err) {
          if (chunks.length > 1) await conn.rollback().catch(() => {});
          throw err;
        } finally {
          conn.release();
        }
      }),
    failed: (filter = {}) =>
      run("reading failed deliveries", async () => {
        const where = ["status = 'failed'", "(payload IS NOT NULL OR raw IS NOT NULL)"];
        const args: unknown[] = [];
        if (filter.since) {
          where.push("finished_at >= ?");
          args.push(filter.since);
        }
        if (filter.eventId) {
          where.push("event_id = ?");
          args.push(keyColumns({ eventId: filter.eventId, channel: "" }).eventId);
        }
        args.push(filter.limit ?? 10_000);
        const [rows] = await pool.query(
          `SELECT payload, raw, channel, attempts, last_error, finished_at FROM fanda_deliveries
           WHERE ${where.join(" AND ")} ORDER BY finished_at, id LIMIT ?`,
          args,
        );
        return (rows as Parameters<typeof toFailed>[0][]).flatMap((r) => toFailed(r) ?? []);
      }),
    delivered: (keys) =>
      run("reading delivered rows", async () => {
        const found: { event_id: string; channel: string }[] = [];
        for (const chunk of deliveredChunks(keys)) {
          const [rows] = await pool.query(
            `SELECT event_id, channel FROM fanda_deliveries
             WHERE status = 'delivered' AND (event_id, channel) IN (?)`,
            [chunk.map((k) => [k.eventId, k.channel])],
          );
          found.push(...(rows as typeof found));
        }
        return deliveredOf(keys, found);
      }),
    healthy: gate.healthy,
    close: () => pool.end(),
  };
}
