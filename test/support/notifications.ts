/**
 * One way to make a notification in tests: every field the contract requires, consistent with
 * each other (file name, key and s3Url from `key` and `bucket`), a fresh eventId unless one is
 * given, and any field overridden.
 */
import { type Notification, SCHEMA_VERSION } from "../../core/contract.ts";

let sequence = 0;

/** What a test may set: any field, plus the object's key and bucket. */
export type NotificationOverrides = Partial<Notification> & { key?: string; bucket?: string };

/** A valid notification (category `positive`, `reports/positive/q3.pdf` in `fanda-uploads`). */
export function aNotification(over: NotificationOverrides = {}): Notification {
  const { key = "reports/positive/q3.pdf", bucket = "fanda-uploads", ...fields } = over;
  return {
    schemaVersion: SCHEMA_VERSION,
    eventId: (sequence++).toString(16).padStart(32, "0"),
    fileName: key.slice(key.lastIndexOf("/") + 1),
    bucketName: bucket,
    objectKey: key,
    uploadTime: "2026-11-27T09:15:30.123Z",
    s3Url: `s3://${bucket}/${key}`,
    category: "positive",
    sequencer: "01",
    eventName: "ObjectCreated:Put",
    ...fields,
  };
}
