/**
 * The delivery log: one row per (event, channel) with its final status, attempts, last
 * error, provider message id and timings. MySQL (RDS) in production through a mysql2 pool
 * (./mysql.ts); SQLite (bun:sqlite) when MYSQL_URL is unset, so the main job runs with nothing
 * but Kafka (./sqlite.ts). This file holds what both backends share.
 *
 * Rows are written in batches (one statement per commit, before its offsets are committed) and
 * upserted on UNIQUE(event_id, channel): a redelivery adds its attempts, and a delivered row is
 * never downgraded. The notification itself is kept for failed rows, so `bun run replay --from
 * log` can send them again.
 */
import { createHash } from "node:crypto";
import type { Notification } from "../../../core/contract.ts";
import { FandaError } from "../errors.ts";

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
  /**
   * Per key, in order, whether the log has a delivered row for it: one query per call (the
   * unique (event_id, channel) key). The idempotency store's second line (idempotency.ts).
   */
  delivered(keys: readonly { eventId: string; channel: string }[]): Promise<boolean[]>;
  /** Whether the last operation reached the database. */
  healthy(): boolean;
  close(): Promise<void>;
}

/** The database could not be reached or refused a statement; retriable. */
export class DeliveryLogUnavailableError extends FandaError {
  constructor(operation: string, cause: unknown) {
    super(`delivery log: ${operation}`, "delivery log unavailable", { retriable: true, cause });
  }
}

/** The mark a shortened text ends with; the full value is kept in the row's `raw` column. */
export const TRUNCATED = "…[truncated]";

/**
 * What each column holds, in characters (MySQL counts utf8mb4 code points), as the MySQL
 * schema declares it; SQLite stores the same normalised rows, so both logs read back alike.
 */
export const COLUMN_LIMITS = {
  eventId: 32,
  channel: 32,
  category: 64,
  bucket: 63,
  objectKey: 1024,
  providerId: 255,
  lastError: 4000,
} as const;

/** MySQL TEXT holds this many bytes (the payload column). */
const TEXT_BYTES = 65_535;
/** A raw value longer than this keeps its start only (and the mark): bounds one row's size. */
const RAW_CHARS = 65_536;
/** A notification kept raw (its payload did not fit) may be this long before it is cut. */
const RAW_PAYLOAD_CHARS = 1_048_576;
/** The times DATETIME(3) can store. */
const MIN_TIME = Date.UTC(1000, 0, 1);
const MAX_TIME = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

/** Whether `s` has at most `max` code points (cheap for the common short case). */
const fits = (s: string, max: number) => s.length <= max || [...s].length <= max;

/** The first `max` code points of `s`, with {@link TRUNCATED} at the end when it was cut. */
export function fitText(s: string, max: number): string {
  if (fits(s, max)) return s;
  return [...s.slice(0, max * 2)].slice(0, max - TRUNCATED.length).join("") + TRUNCATED;
}

/**
 * A key column's value: `s` when it fits, else its start and a hash of the whole, so distinct
 * long values stay distinct and a lookup of the same value finds the same row.
 */
export function fitKey(s: string, max: number): string {
  if (fits(s, max)) return s;
  const digest = createHash("sha256").update(s).digest("hex").slice(0, 8);
  return `${[...s.slice(0, max * 2)].slice(0, max - 9).join("")}~${digest}`;
}

/** A time DATETIME(3) can store: invalid times become the earliest, others are clamped. */
function fitTime(d: Date): { time: Date; changed: boolean } {
  const t = d instanceof Date ? d.getTime() : Number.NaN;
  if (Number.isNaN(t)) return { time: new Date(MIN_TIME), changed: true };
  if (t < MIN_TIME) return { time: new Date(MIN_TIME), changed: true };
  if (t > MAX_TIME) return { time: new Date(MAX_TIME), changed: true };
  return { time: new Date(t), changed: false };
}

/** An upload time as text: parsed, sub-millisecond digits dropped (the column keeps ms). */
function parseUploadTime(s: string): Date {
  const t = Date.parse(s);
  if (!Number.isNaN(t)) return new Date(t);
  return new Date(String(s).replace(/(\.\d{3})\d+/, "$1"));
}

const rawText = (s: string, max = RAW_CHARS) => (s.length <= max ? s : s.slice(0, max) + TRUNCATED);
const timeText = (d: unknown) =>
  d instanceof Date && !Number.isNaN(d.getTime()) ? d.toISOString() : String(d);

/** Keys per `delivered` query: bounds the statement; a batch's keys fit in one. */
export const DELIVERED_CHUNK = 2000;

/**
 * Answers `delivered` from the rows a query found: CHAR and PAD SPACE collations ignore
 * trailing spaces, so both sides are compared without them.
 */
export function deliveredOf(
  keys: readonly { eventId: string; channel: string }[],
  found: readonly { event_id: string; channel: string }[],
): boolean[] {
  const id = (e: string, c: string) => `${e.trimEnd()}\u0000${c.trimEnd()}`;
  const seen = new Set(found.map((r) => id(String(r.event_id), String(r.channel))));
  return keys.map((k) => {
    const c = keyColumns(k);
    return seen.has(id(c.eventId, c.channel));
  });
}

/** Distinct stored keys of `keys`, in chunks of {@link DELIVERED_CHUNK}. */
export function deliveredChunks(keys: readonly { eventId: string; channel: string }[]) {
  const distinct = new Map<string, { eventId: string; channel: string }>();
  for (const k of keys) {
    const c = keyColumns(k);
    distinct.set(`${c.eventId}\u0000${c.channel}`, c);
  }
  const all = [...distinct.values()];
  const chunks: (typeof all)[] = [];
  for (let i = 0; i < all.length; i += DELIVERED_CHUNK)
    chunks.push(all.slice(i, i + DELIVERED_CHUNK));
  return chunks;
}

/** Where in a delivery-log row a (event, channel) key is stored. */
export const keyColumns = (k: { eventId: string; channel: string }) => ({
  eventId: fitKey(String(k.eventId), COLUMN_LIMITS.eventId),
  channel: fitKey(String(k.channel), COLUMN_LIMITS.channel),
});

/**
 * A record as the columns store it. Never refused for its content: a value that does not
 * fit its column is shortened (texts end with {@link TRUNCATED}, keys with a hash, times are
 * clamped to what DATETIME(3) stores) and the original goes, as JSON, into `raw`, so one odd
 * record cannot make the database reject its whole batch.
 */
export function row(r: DeliveryRecord) {
  const raw: Record<string, string | number> = Object.create(null);
  const n = r.notification;
  const text = (field: string, value: string, column: string) => {
    if (column !== value) raw[field] = rawText(value);
    return column;
  };
  const key = keyColumns({ eventId: n.eventId, channel: r.channel });
  const str = (v: unknown) => (typeof v === "string" ? v : String(v ?? ""));
  const eventId = text("eventId", str(n.eventId), key.eventId);
  const channel = text("channel", str(r.channel), key.channel);
  const category = text(
    "category",
    str(n.category),
    fitText(str(n.category), COLUMN_LIMITS.category),
  );
  const bucket = text(
    "bucket",
    str(n.bucketName),
    fitText(str(n.bucketName), COLUMN_LIMITS.bucket),
  );
  const objectKey = text(
    "objectKey",
    str(n.objectKey),
    fitText(str(n.objectKey), COLUMN_LIMITS.objectKey),
  );
  const providerId =
    r.providerId === undefined || r.providerId === null
      ? null
      : text("providerId", str(r.providerId), fitText(str(r.providerId), COLUMN_LIMITS.providerId));
  const lastError =
    r.lastError === undefined || r.lastError === null
      ? null
      : text("lastError", str(r.lastError), fitText(str(r.lastError), COLUMN_LIMITS.lastError));
  const upload = fitTime(parseUploadTime(str(n.uploadTime)));
  if (upload.changed || /\.\d{4,}/.test(str(n.uploadTime))) {
    raw.uploadTime = rawText(str(n.uploadTime));
  }
  const first = fitTime(r.firstAttemptAt);
  if (first.changed) raw.firstAttemptAt = timeText(r.firstAttemptAt);
  const finished = fitTime(r.finishedAt);
  if (finished.changed) raw.finishedAt = timeText(r.finishedAt);
  const attempts = Number.isFinite(r.attempts)
    ? Math.min(2_147_483_647, Math.max(0, Math.trunc(r.attempts)))
    : 0;
  if (attempts !== r.attempts) raw.attempts = String(r.attempts);
  let payload: string | null = null;
  if (r.status !== "delivered") {
    payload = JSON.stringify(n);
    if (Buffer.byteLength(payload, "utf8") > TEXT_BYTES) {
      raw.payload = rawText(payload, RAW_PAYLOAD_CHARS);
      payload = null;
    }
  }
  return {
    eventId,
    channel,
    category,
    bucket,
    objectKey,
    status: r.status === "delivered" ? ("delivered" as const) : ("failed" as const),
    attempts,
    lastError,
    providerId,
    uploadTime: upload.time,
    firstAttemptAt: first.time,
    finishedAt: finished.time,
    payload,
    raw: Object.keys(raw).length > 0 ? JSON.stringify(raw) : null,
  };
}

/** The raw values a row kept (see {@link row}), or none. */
export function rawOf(text: string | null | undefined): Record<string, string> {
  if (!text) return {};
  try {
    const parsed = JSON.parse(text) as unknown;
    return parsed && typeof parsed === "object" ? (parsed as Record<string, string>) : {};
  } catch {
    return {};
  }
}

/** A stored failed row, read back for replay; undefined when it kept no notification. */
export function toFailed(r: {
  payload: string | null;
  raw?: string | null;
  channel: string;
  attempts: number;
  last_error: string | null;
  finished_at: Date | string;
}): FailedDelivery | undefined {
  const text = r.payload ?? rawOf(r.raw).payload;
  if (typeof text !== "string") return undefined;
  let notification: Notification;
  try {
    notification = JSON.parse(text) as Notification;
  } catch {
    return undefined;
  }
  return {
    notification,
    channel: r.channel,
    attempts: Number(r.attempts),
    ...(r.last_error ? { lastError: r.last_error } : {}),
    finishedAt: new Date(r.finished_at),
  };
}
