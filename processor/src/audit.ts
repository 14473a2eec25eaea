/**
 * The delivery log: one row per (event, channel) with its final status, attempts, last
 * error, provider message id and timings. MySQL (RDS) in production through a mysql2 pool;
 * SQLite (bun:sqlite) when MYSQL_URL is unset, so the main job runs with nothing but Kafka.
 *
 * Rows are written in batches (one statement per consumer batch, before its offsets are
 * committed) and upserted on UNIQUE(event_id, channel): a redelivery adds its attempts, and
 * a delivered row is never downgraded. The notification itself is kept for failed rows, so
 * `bun run replay --from-log` can send them again.
 */
import { createRequire } from "node:module";
import mysql from "mysql2/promise";
import type { Notification } from "../../core/contract.ts";
import { ConfigError, createHealthGate, FandaError } from "./errors.ts";

/** One channel's final outcome for one event. */
export interface DeliveryRecord {
  notification: Notification;
  channel: string;
  status: "delivered" | "failed";
  attempts: number;
  lastError?: string;
  providerId?: string;
  firstAttemptAt: Date;
  finishedAt: Date;
}

/** A failed delivery as read back for replay. */
export interface FailedDelivery {
  notification: Notification;
  channel: string;
  attempts: number;
  lastError?: string;
  finishedAt: Date;
}

/** Where delivery records go. */
export interface DeliveryLog {
  readonly kind: "mysql" | "sqlite";
  /** Applies missing schema migrations (idempotent, safe with several processors starting). */
  migrate(): Promise<void>;
  /** Upserts records in one statement. */
  write(records: readonly DeliveryRecord[]): Promise<void>;
  /** Failed deliveries, oldest first, optionally since a time or for one event. */
  failed(filter?: { since?: Date; eventId?: string; limit?: number }): Promise<FailedDelivery[]>;
  /** Whether the last operation reached the database. */
  healthy(): boolean;
  close(): Promise<void>;
}

/** The database could not be reached or refused a statement; retriable. */
export class AuditUnavailableError extends FandaError {
  constructor(operation: string, cause: unknown) {
    super(`audit: ${operation}`, "delivery log unavailable", { retriable: true, cause });
  }
}

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
];

const SQLITE_MIGRATIONS: { version: number; name: string; sql: string }[] = [
  {
    version: 1,
    name: "create fanda_deliveries",
    sql: `CREATE TABLE IF NOT EXISTS fanda_deliveries (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      event_id TEXT NOT NULL,
      channel TEXT NOT NULL,
      category TEXT NOT NULL,
      bucket TEXT NOT NULL,
      object_key TEXT NOT NULL,
      status TEXT NOT NULL,
      attempts INTEGER NOT NULL,
      last_error TEXT,
      provider_id TEXT,
      upload_time TEXT NOT NULL,
      first_attempt_at TEXT NOT NULL,
      finished_at TEXT NOT NULL,
      payload TEXT,
      UNIQUE (event_id, channel)
    );
    CREATE INDEX IF NOT EXISTS ix_fanda_deliveries_status_finished ON fanda_deliveries (status, finished_at);`,
  },
];

const row = (r: DeliveryRecord) => ({
  eventId: r.notification.eventId,
  channel: r.channel,
  category: r.notification.category,
  bucket: r.notification.bucketName,
  objectKey: r.notification.objectKey,
  status: r.status,
  attempts: r.attempts,
  lastError: r.lastError?.slice(0, 4000) ?? null,
  providerId: r.providerId ?? null,
  uploadTime: new Date(r.notification.uploadTime),
  firstAttemptAt: r.firstAttemptAt,
  finishedAt: r.finishedAt,
  payload: r.status === "failed" ? JSON.stringify(r.notification) : null,
});

function toFailed(r: {
  payload: string;
  channel: string;
  attempts: number;
  last_error: string | null;
  finished_at: Date | string;
}): FailedDelivery {
  return {
    notification: JSON.parse(r.payload) as Notification,
    channel: r.channel,
    attempts: Number(r.attempts),
    ...(r.last_error ? { lastError: r.last_error } : {}),
    finishedAt: new Date(r.finished_at),
  };
}

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
  const gate = createHealthGate((op, cause) => new AuditUnavailableError(op, cause), false);
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
          ]);
        await pool.query(
          `INSERT INTO fanda_deliveries (event_id, channel, category, bucket, object_key, status,
             attempts, last_error, provider_id, upload_time, first_attempt_at, finished_at, payload)
           VALUES ?
           ON DUPLICATE KEY UPDATE
             attempts = attempts + VALUES(attempts),
             last_error = IF(status = 'delivered', last_error, VALUES(last_error)),
             provider_id = COALESCE(VALUES(provider_id), provider_id),
             finished_at = IF(status = 'delivered', finished_at, VALUES(finished_at)),
             payload = IF(status = 'delivered' OR VALUES(status) = 'delivered', NULL, VALUES(payload)),
             status = IF(status = 'delivered', 'delivered', VALUES(status))`,
          [values],
        );
      }),
    failed: (filter = {}) =>
      run("reading failed deliveries", async () => {
        const where = ["status = 'failed'", "payload IS NOT NULL"];
        const args: unknown[] = [];
        if (filter.since) {
          where.push("finished_at >= ?");
          args.push(filter.since);
        }
        if (filter.eventId) {
          where.push("event_id = ?");
          args.push(filter.eventId);
        }
        args.push(filter.limit ?? 10_000);
        const [rows] = await pool.query(
          `SELECT payload, channel, attempts, last_error, finished_at FROM fanda_deliveries
           WHERE ${where.join(" AND ")} ORDER BY finished_at, id LIMIT ?`,
          args,
        );
        return (rows as Parameters<typeof toFailed>[0][]).map(toFailed);
      }),
    healthy: gate.healthy,
    close: () => pool.end(),
  };
}

/**
 * Creates the SQLite delivery log (bun:sqlite), the embedded default.
 * @param options.path database file, or `:memory:`
 */
export function createSqliteLog(options: { path: string }): DeliveryLog {
  if (options.path.length === 0) throw new ConfigError("audit", ["AUDIT_SQLITE_PATH: is empty"]);
  if (typeof globalThis.Bun === "undefined") {
    throw new ConfigError("audit", [
      "MYSQL_URL: is unset, and the SQLite delivery log needs Bun (bun:sqlite); set MYSQL_URL on Node",
    ]);
  }
  // Loaded on use, so the module also loads on Node (where only the MySQL log is available).
  const { Database } = createRequire(import.meta.url)("bun:sqlite") as typeof import("bun:sqlite");
  const db = new Database(options.path, { create: true, strict: true });
  db.exec("PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000;");
  const gate = createHealthGate((op, cause) => new AuditUnavailableError(op, cause), true);
  const run = gate.run;
  const iso = (d: Date) => d.toISOString();
  return {
    kind: "sqlite",
    migrate: () =>
      run("migrating", () => {
        db.exec(`CREATE TABLE IF NOT EXISTS fanda_schema_migrations (
          version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`);
        const applied = new Set(
          db
            .query<{ version: number }, []>("SELECT version FROM fanda_schema_migrations")
            .all()
            .map((r) => r.version),
        );
        for (const m of SQLITE_MIGRATIONS) {
          if (applied.has(m.version)) continue;
          db.transaction(() => {
            db.exec(m.sql);
            db.query(
              "INSERT INTO fanda_schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
            ).run(m.version, m.name, new Date().toISOString());
          })();
        }
      }),
    write: (records) =>
      run("writing", () => {
        if (records.length === 0) return;
        const upsert = db.query(
          `INSERT INTO fanda_deliveries (event_id, channel, category, bucket, object_key, status,
             attempts, last_error, provider_id, upload_time, first_attempt_at, finished_at, payload)
           VALUES ($eventId, $channel, $category, $bucket, $objectKey, $status, $attempts,
             $lastError, $providerId, $uploadTime, $firstAttemptAt, $finishedAt, $payload)
           ON CONFLICT (event_id, channel) DO UPDATE SET
             attempts = attempts + excluded.attempts,
             last_error = CASE WHEN status = 'delivered' THEN last_error ELSE excluded.last_error END,
             provider_id = COALESCE(excluded.provider_id, provider_id),
             finished_at = CASE WHEN status = 'delivered' THEN finished_at ELSE excluded.finished_at END,
             payload = CASE WHEN status = 'delivered' OR excluded.status = 'delivered' THEN NULL ELSE excluded.payload END,
             status = CASE WHEN status = 'delivered' THEN 'delivered' ELSE excluded.status END`,
        );
        db.transaction(() => {
          for (const r of records.map(row)) {
            upsert.run({
              ...r,
              uploadTime: iso(r.uploadTime),
              firstAttemptAt: iso(r.firstAttemptAt),
              finishedAt: iso(r.finishedAt),
            });
          }
        })();
      }),
    failed: (filter = {}) =>
      run("reading failed deliveries", () => {
        const where = ["status = 'failed'", "payload IS NOT NULL"];
        const args: (string | number)[] = [];
        if (filter.since) {
          where.push("finished_at >= ?");
          args.push(filter.since.toISOString());
        }
        if (filter.eventId) {
          where.push("event_id = ?");
          args.push(filter.eventId);
        }
        args.push(filter.limit ?? 10_000);
        return db
          .query<Parameters<typeof toFailed>[0], (string | number)[]>(
            `SELECT payload, channel, attempts, last_error, finished_at FROM fanda_deliveries
             WHERE ${where.join(" AND ")} ORDER BY finished_at, id LIMIT ?`,
          )
          .all(...args)
          .map(toFailed);
      }),
    healthy: gate.healthy,
    async close() {
      db.close();
    },
  };
}
