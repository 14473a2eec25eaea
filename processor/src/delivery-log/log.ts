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

/** A record as the columns store it. */
export const row = (r: DeliveryRecord) => ({
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

/** A stored failed row, read back for replay. */
export function toFailed(r: {
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
