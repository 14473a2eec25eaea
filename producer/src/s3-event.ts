/**
 * Reads S3 event notifications. This module is the one place where S3 keys are decoded
 * and where an S3 record becomes a {@link Notification}.
 *
 * Supported today: the direct S3 notification (`{ "Records": [...] }`, eventVersion 2.x)
 * and the `s3:TestEvent` S3 sends when a notification is configured (skipped).
 */
import { createHash } from "node:crypto";
import { z } from "zod";
import { type Notification, SCHEMA_VERSION } from "./contract.ts";
import { InvalidInputError } from "./errors.ts";

/** One object-level event, key fully decoded. */
export interface S3ObjectEvent {
  bucket: string;
  key: string;
  eventName: string;
  eventTime: string;
  sequencer: string;
  size?: number;
  eTag?: string;
  versionId?: string;
}

/** What an event yields: the objects to notify about, and what was skipped and why. */
export interface ParsedS3Event {
  objects: S3ObjectEvent[];
  skipped: { index: number; reason: string }[];
}

/** Options of {@link parseS3Event}. */
export interface ParseOptions {
  /** Also notify on `ObjectRemoved:*` (default false: removals are skipped). */
  notifyOnRemoved?: boolean;
}

const OP = "s3-event: parsing";

const recordSchema = z.object({
  eventVersion: z.string().regex(/^2\.\d+$/, "an S3 eventVersion 2.x"),
  eventSource: z.literal("aws:s3"),
  eventTime: z.iso.datetime({ offset: true }),
  eventName: z.string().min(1),
  s3: z.object({
    bucket: z.object({ name: z.string().min(1, "bucket name is empty") }),
    object: z.object({
      key: z.string().min(1, "object key is empty"),
      size: z.number().int().nonnegative().optional(),
      eTag: z.string().optional(),
      versionId: z.string().optional(),
      sequencer: z.string().min(1),
    }),
  }),
});

const testEventSchema = z.object({ Event: z.literal("s3:TestEvent") });

/**
 * Decodes an S3 notification key: `+` is a space, then percent-decoding as UTF-8.
 * A literal `+` arrives as `%2B`.
 * @throws InvalidInputError when the percent-encoding is malformed
 * @example
 * decodeS3Key("reports/positive/Q3+%EC%8B%A4%EC%A0%81.pdf"); // "reports/positive/Q3 실적.pdf"
 */
export function decodeS3Key(raw: string): string {
  try {
    return decodeURIComponent(raw.replace(/\+/g, " "));
  } catch (cause) {
    throw new InvalidInputError(
      "s3-event: decoding key",
      `key ${JSON.stringify(raw)} is not valid percent-encoded UTF-8`,
      { cause },
    );
  }
}

/**
 * Encodes a key the way S3 writes it into event notifications (form encoding: space as `+`,
 * `/` kept). The inverse of {@link decodeS3Key}; used to build events for local uploads.
 */
export function encodeS3Key(key: string): string {
  return encodeURIComponent(key).replace(/%2F/g, "/").replace(/%20/g, "+");
}

function issuesOf(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ");
}

/**
 * Parses a direct S3 event notification.
 * Every record must be valid: one bad record rejects the whole event, so nothing is
 * published from input that is partly garbage.
 * @throws InvalidInputError describing the first bad record and what was wrong
 */
export function parseS3Event(input: unknown, options: ParseOptions = {}): ParsedS3Event {
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    throw new InvalidInputError(OP, "event is not a JSON object");
  }
  if (testEventSchema.safeParse(input).success) {
    return { objects: [], skipped: [{ index: 0, reason: "s3:TestEvent" }] };
  }
  const records = (input as { Records?: unknown }).Records;
  if (!Array.isArray(records)) {
    throw new InvalidInputError(OP, "event has no Records array (not an S3 event notification)");
  }
  const result: ParsedS3Event = { objects: [], skipped: [] };
  records.forEach((record, index) => {
    const parsed = recordSchema.safeParse(record);
    if (!parsed.success) {
      throw new InvalidInputError(OP, `Records[${index}]: ${issuesOf(parsed.error)}`);
    }
    const r = parsed.data;
    if (r.eventName.startsWith("ObjectRemoved:") && !options.notifyOnRemoved) {
      result.skipped.push({ index, reason: `${r.eventName} (removals are not notified)` });
      return;
    }
    if (!r.eventName.startsWith("ObjectCreated:") && !r.eventName.startsWith("ObjectRemoved:")) {
      result.skipped.push({ index, reason: `${r.eventName} (not an object event)` });
      return;
    }
    let key: string;
    try {
      key = decodeS3Key(r.s3.object.key);
    } catch (cause) {
      throw new InvalidInputError(OP, `Records[${index}]: ${(cause as Error).message}`, { cause });
    }
    const o = r.s3.object;
    result.objects.push({
      bucket: r.s3.bucket.name,
      key,
      eventName: r.eventName,
      eventTime: r.eventTime,
      sequencer: o.sequencer,
      ...(o.size === undefined ? {} : { size: o.size }),
      ...(o.eTag ? { eTag: o.eTag } : {}),
      ...(o.versionId ? { versionId: o.versionId } : {}),
    });
  });
  return result;
}

/**
 * The idempotency id of one object version: the same for every retry and duplicate
 * delivery of the same event. Uses versionId when the bucket is versioned, else sequencer.
 */
export function eventIdOf(e: Pick<S3ObjectEvent, "bucket" | "key" | "versionId" | "sequencer">) {
  const version = e.versionId ? `v:${e.versionId}` : `s:${e.sequencer}`;
  return createHash("sha256")
    .update(`${e.bucket}\n${e.key}\n${version}`)
    .digest("hex")
    .slice(0, 32);
}

/** The basename of a key (the part after the last `/`), or the key for a "folder" object. */
export function fileNameOf(key: string): string {
  const trimmed = key.endsWith("/") ? key.slice(0, -1) : key;
  const base = trimmed.slice(trimmed.lastIndexOf("/") + 1);
  return base.length > 0 ? base : key;
}

/** Builds the message for one object event. */
export function toNotification(e: S3ObjectEvent, category: string): Notification {
  return {
    schemaVersion: SCHEMA_VERSION,
    eventId: eventIdOf(e),
    fileName: fileNameOf(e.key),
    bucketName: e.bucket,
    objectKey: e.key,
    uploadTime: e.eventTime,
    s3Url: `s3://${e.bucket}/${e.key}`,
    category,
    sequencer: e.sequencer,
    eventName: e.eventName,
    ...(e.size === undefined ? {} : { size: e.size }),
    ...(e.eTag ? { eTag: e.eTag } : {}),
    ...(e.versionId ? { versionId: e.versionId } : {}),
  };
}
