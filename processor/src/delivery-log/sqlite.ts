/** The SQLite (bun:sqlite) backend of the delivery log, for the main job on one machine. */
import { createRequire } from "node:module";
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
  {
    // The original values of a row's fields that did not fit their columns (log.ts `row`).
    version: 2,
    name: "add fanda_deliveries.raw",
    sql: "ALTER TABLE fanda_deliveries ADD COLUMN raw TEXT",
  },
];

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
  const gate = createHealthGate((op, cause) => new DeliveryLogUnavailableError(op, cause), true);
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
             attempts, last_error, provider_id, upload_time, first_attempt_at, finished_at,
             payload, raw)
           VALUES ($eventId, $channel, $category, $bucket, $objectKey, $status, $attempts,
             $lastError, $providerId, $uploadTime, $firstAttemptAt, $finishedAt, $payload, $raw)
           ON CONFLICT (event_id, channel) DO UPDATE SET
             attempts = MIN(attempts + excluded.attempts, 2147483647),
             raw = COALESCE(excluded.raw, raw),
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
        const where = ["status = 'failed'", "(payload IS NOT NULL OR raw IS NOT NULL)"];
        const args: (string | number)[] = [];
        if (filter.since) {
          where.push("finished_at >= ?");
          args.push(filter.since.toISOString());
        }
        if (filter.eventId) {
          where.push("event_id = ?");
          args.push(keyColumns({ eventId: filter.eventId, channel: "" }).eventId);
        }
        args.push(filter.limit ?? 10_000);
        return db
          .query<Parameters<typeof toFailed>[0], (string | number)[]>(
            `SELECT payload, raw, channel, attempts, last_error, finished_at FROM fanda_deliveries
             WHERE ${where.join(" AND ")} ORDER BY finished_at, id LIMIT ?`,
          )
          .all(...args)
          .flatMap((r) => toFailed(r) ?? []);
      }),
    delivered: (keys) =>
      run("reading delivered rows", () => {
        const found: { event_id: string; channel: string }[] = [];
        for (const chunk of deliveredChunks(keys)) {
          const pairs = chunk.map(() => "(?, ?)").join(", ");
          found.push(
            ...db
              .query<{ event_id: string; channel: string }, string[]>(
                `SELECT event_id, channel FROM fanda_deliveries
                 WHERE status = 'delivered' AND (event_id, channel) IN (VALUES ${pairs})`,
              )
              .all(...chunk.flatMap((k) => [k.eventId, k.channel])),
          );
        }
        return deliveredOf(keys, found);
      }),
    healthy: gate.healthy,
    async close() {
      db.close();
    },
  };
}
