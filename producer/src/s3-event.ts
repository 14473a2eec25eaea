/**
 * Reads S3 event notifications in every shape they reach us, and is the one place where
 * S3 keys are decoded and where an S3 record becomes a {@link Notification}.
 *
 * Shapes: the direct S3 notification (`{"Records":[…]}`, eventVersion 2.x), SNS-wrapped
 * (Lambda SNS event, or an SNS `Notification` envelope), SQS-wrapped (Lambda SQS event whose
 * bodies are either of the above), and EventBridge "Object Created"/"Object Deleted" (keys
 * arrive unencoded there). `s3:TestEvent` is skipped, never an error.
 */
import { createHash } from "node:crypto";
import { z } from "zod";
import {
  bucketNameSchema,
  encodeNotification,
  type Notification,
  objectKeySchema,
  SCHEMA_VERSION,
} from "../../core/contract.ts";
import { type FandaError, InvalidInputError, toFandaError } from "../../core/errors.ts";

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
  /** `at` is where in the input, e.g. `Records[0].body.Records[2]`. */
  skipped: { at: string; reason: string }[];
}

/** Options of {@link parseS3Event}. */
export interface ParseOptions {
  /** Also notify on `ObjectRemoved:*` (default false: removals are skipped). */
  notifyOnRemoved?: boolean;
}

const OP = "s3-event: parsing";
/** Envelopes nest at most SQS → SNS → S3; anything deeper is not an AWS shape. */
const MAX_DEPTH = 3;

const s3RecordSchema = z.object({
  eventVersion: z.string().regex(/^2\.\d+$/, "an S3 eventVersion 2.x"),
  eventSource: z.literal("aws:s3"),
  eventTime: z.iso.datetime({ offset: true }),
  eventName: z.string().min(1),
  s3: z.object({
    bucket: z.object({ name: bucketNameSchema }),
    object: z.object({
      key: z.string().min(1, "object key is empty"),
      size: z.number().int().nonnegative().optional(),
      eTag: z.string().optional(),
      versionId: z.string().optional(),
      sequencer: z.string().min(1),
    }),
  }),
});

const eventBridgeSchema = z.object({
  "detail-type": z.string().min(1),
  source: z.literal("aws.s3"),
  time: z.iso.datetime({ offset: true }),
  detail: z.object({
    bucket: z.object({ name: bucketNameSchema }),
    object: z.object({
      key: objectKeySchema,
      size: z.number().int().nonnegative().optional(),
      etag: z.string().optional(),
      "version-id": z.string().optional(),
      sequencer: z.string().min(1),
    }),
    reason: z.string().optional(),
    "deletion-type": z.string().optional(),
  }),
});

/**
 * EventBridge `reason` → the S3 notification event name it corresponds to. A Map, because the
 * reason is input: an object literal would answer `constructor` with an inherited function.
 */
const EVENTBRIDGE_CREATED: ReadonlyMap<string, string> = new Map([
  ["PutObject", "ObjectCreated:Put"],
  ["POST Object", "ObjectCreated:Post"],
  ["CopyObject", "ObjectCreated:Copy"],
  ["CompleteMultipartUpload", "ObjectCreated:CompleteMultipartUpload"],
]);

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

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

function parseJsonField(value: unknown, at: string): unknown {
  if (typeof value !== "string") throw new InvalidInputError(OP, `${at}: expected a JSON string`);
  try {
    return JSON.parse(value);
  } catch (cause) {
    throw new InvalidInputError(OP, `${at}: not valid JSON`, { cause });
  }
}

/** Decides notify or skip for one object event, by its event name. */
function admit(out: ParsedS3Event, at: string, event: S3ObjectEvent, options: ParseOptions): void {
  if (event.eventName.startsWith("ObjectCreated:")) {
    out.objects.push(event);
  } else if (event.eventName.startsWith("ObjectRemoved:")) {
    if (options.notifyOnRemoved) out.objects.push(event);
    else out.skipped.push({ at, reason: `${event.eventName} (removals are not notified)` });
  } else {
    out.skipped.push({ at, reason: `${event.eventName} (not an object event)` });
  }
}

function objectEvent(
  base: Omit<S3ObjectEvent, "size" | "eTag" | "versionId">,
  extra: { size?: number | undefined; eTag?: string | undefined; versionId?: string | undefined },
): S3ObjectEvent {
  return {
    ...base,
    ...(extra.size === undefined ? {} : { size: extra.size }),
    ...(extra.eTag ? { eTag: extra.eTag } : {}),
    ...(extra.versionId ? { versionId: extra.versionId } : {}),
  };
}

function s3Record(record: unknown, at: string, out: ParsedS3Event, options: ParseOptions): void {
  const parsed = s3RecordSchema.safeParse(record);
  if (!parsed.success) throw new InvalidInputError(OP, `${at}: ${issuesOf(parsed.error)}`);
  const r = parsed.data;
  let key: string;
  try {
    key = decodeS3Key(r.s3.object.key);
  } catch (cause) {
    throw new InvalidInputError(OP, `${at}: ${(cause as Error).message}`, { cause });
  }
  const decoded = objectKeySchema.safeParse(key);
  if (!decoded.success) {
    const why = decoded.error.issues.map((i) => i.message).join("; ");
    throw new InvalidInputError(OP, `${at}: s3.object.key: ${why}`);
  }
  const o = r.s3.object;
  admit(
    out,
    at,
    objectEvent(
      {
        bucket: r.s3.bucket.name,
        key,
        eventName: r.eventName,
        eventTime: r.eventTime,
        sequencer: o.sequencer,
      },
      { size: o.size, eTag: o.eTag, versionId: o.versionId },
    ),
    options,
  );
}

function eventBridge(input: unknown, at: string, out: ParsedS3Event, options: ParseOptions): void {
  const parsed = eventBridgeSchema.safeParse(input);
  if (!parsed.success) throw new InvalidInputError(OP, `${at}: ${issuesOf(parsed.error)}`);
  const e = parsed.data;
  const d = e.detail;
  let eventName: string;
  if (e["detail-type"] === "Object Created") {
    eventName = EVENTBRIDGE_CREATED.get(d.reason ?? "") ?? `ObjectCreated:${d.reason || "Unknown"}`;
  } else if (e["detail-type"] === "Object Deleted") {
    // S3 names a lifecycle rule's deletions LifecycleExpiration:*, not ObjectRemoved:*: the
    // same deletion must be admitted or skipped alike whichever way it arrives.
    const family = d.reason === "Lifecycle Expiration" ? "LifecycleExpiration" : "ObjectRemoved";
    eventName =
      d["deletion-type"] === "Delete Marker Created"
        ? `${family}:DeleteMarkerCreated`
        : `${family}:Delete`;
  } else {
    out.skipped.push({ at, reason: `EventBridge ${e["detail-type"]} (not an object event)` });
    return;
  }
  // EventBridge carries keys as they are, not URL-encoded.
  admit(
    out,
    at,
    objectEvent(
      {
        bucket: d.bucket.name,
        key: d.object.key,
        eventName,
        eventTime: e.time,
        sequencer: d.object.sequencer,
      },
      { size: d.object.size, eTag: d.object.etag, versionId: d.object["version-id"] },
    ),
    options,
  );
}

function walk(
  input: unknown,
  at: string,
  depth: number,
  out: ParsedS3Event,
  options: ParseOptions,
): void {
  const where = at || "event";
  if (depth > MAX_DEPTH) {
    throw new InvalidInputError(OP, `${where}: envelopes nested deeper than SQS → SNS → S3`);
  }
  if (!isObject(input)) throw new InvalidInputError(OP, `${where}: not a JSON object`);
  if (input.Event === "s3:TestEvent") {
    out.skipped.push({ at: where, reason: "s3:TestEvent" });
    return;
  }
  if (input.source === "aws.s3" && Object.hasOwn(input, "detail-type")) {
    eventBridge(input, where, out, options);
    return;
  }
  if (input.Type === "Notification" && Object.hasOwn(input, "Message")) {
    walk(
      parseJsonField(input.Message, `${where}.Message`),
      `${where}.Message`,
      depth + 1,
      out,
      options,
    );
    return;
  }
  if (!Object.hasOwn(input, "Records")) {
    throw new InvalidInputError(
      OP,
      `${where}: no Records array, EventBridge detail or SNS Message (not an S3 event notification)`,
    );
  }
  if (!Array.isArray(input.Records)) {
    throw new InvalidInputError(OP, `${where}: no Records array (Records is not an array)`);
  }
  input.Records.forEach((record: unknown, i: number) => {
    const here = `${at ? `${at}.` : ""}Records[${i}]`;
    if (!isObject(record)) throw new InvalidInputError(OP, `${here}: not a JSON object`);
    if (record.eventSource === "aws:sqs") {
      walk(parseJsonField(record.body, `${here}.body`), `${here}.body`, depth + 1, out, options);
    } else if (record.EventSource === "aws:sns") {
      const sns = isObject(record.Sns) ? record.Sns : {};
      walk(
        parseJsonField(sns.Message, `${here}.Sns.Message`),
        `${here}.Sns.Message`,
        depth + 1,
        out,
        options,
      );
    } else {
      s3Record(record, here, out, options);
    }
  });
}

/**
 * Parses an S3 event notification in any supported shape (see the module comment).
 * Every record must be valid: one bad record rejects the whole event, so nothing is
 * published from input that is partly garbage.
 * @throws InvalidInputError naming where the first bad record is and what was wrong
 * @example
 * const { objects, skipped } = parseS3Event(JSON.parse(body));
 */
export function parseS3Event(input: unknown, options: ParseOptions = {}): ParsedS3Event {
  const out: ParsedS3Event = { objects: [], skipped: [] };
  walk(input, "", 0, out, options);
  return out;
}

/** One SQS message's parse result, for partial batch responses. */
export type SqsRecordResult =
  | { messageId: string; parsed: ParsedS3Event }
  | { messageId: string; error: FandaError };

/** True when `event` is a Lambda SQS event (every record from `aws:sqs`). */
export function isSqsEvent(event: unknown): event is { Records: Record<string, unknown>[] } {
  return (
    isObject(event) &&
    Array.isArray(event.Records) &&
    event.Records.length > 0 &&
    event.Records.every((r) => isObject(r) && r.eventSource === "aws:sqs")
  );
}

/**
 * Parses each message of a Lambda SQS event on its own, so that one bad message fails
 * only itself (reported in `batchItemFailures`), not its neighbours. Never throws: a bad
 * message's result carries its error (an InvalidInputError for anything but a bug).
 */
export function parseSqsRecords(
  event: { Records: Record<string, unknown>[] },
  options: ParseOptions = {},
): SqsRecordResult[] {
  return event.Records.map((record, i) => {
    const messageId = typeof record.messageId === "string" ? record.messageId : `#${i}`;
    try {
      const parsed: ParsedS3Event = { objects: [], skipped: [] };
      const at = `Records[${i}].body`;
      walk(parseJsonField(record.body, at), at, 1, parsed, options);
      return { messageId, parsed };
    } catch (err) {
      // Only InvalidInputError is expected; anything else is a bug, still this message's alone.
      return { messageId, error: toFandaError(OP, err) };
    }
  });
}

/**
 * The idempotency id of one S3 event: the same for every redelivery of that event and in
 * every envelope it arrives in (direct, SNS, SQS, EventBridge), different for distinct events.
 *
 * An event is identified by its object version (versionId in a versioned bucket, else the
 * sequencer, which every event has its own of). A delete marker is a version of its own; the
 * permanent removal of a version (ObjectRemoved:Delete, EventBridge "Permanently Deleted")
 * carries the id of the version it removes, an upload's or a delete marker's, so it is marked
 * as a removal. Nothing else is: ids the previous release gave stay as they were, so an event
 * redelivered across a deploy keeps its id. The creation's exact name (Put, Copy, …) is left
 * out: EventBridge names it differently. `eventName` absent means an upload.
 */
export function eventIdOf(
  e: Pick<S3ObjectEvent, "bucket" | "key" | "versionId" | "sequencer"> & { eventName?: string },
): string {
  // "null" is the version id of every object written while versioning is suspended.
  const versioned = Boolean(e.versionId) && e.versionId !== "null";
  const version = versioned ? `v:${e.versionId}` : `s:${e.sequencer}`;
  const removal = versioned && e.eventName === "ObjectRemoved:Delete" ? "\nremoved" : "";
  return createHash("sha256")
    .update(`${e.bucket}\n${e.key}\n${version}${removal}`)
    .digest("hex")
    .slice(0, 32);
}

/** The basename of a key (the part after the last `/`), or the key for a "folder" object. */
export function fileNameOf(key: string): string {
  const trimmed = key.endsWith("/") ? key.slice(0, -1) : key;
  const base = trimmed.slice(trimmed.lastIndexOf("/") + 1);
  return base.length > 0 ? base : key;
}

/**
 * Builds the message for one object event, checked against the contract and the topic's
 * message size, so that what is built can be published.
 * @throws InvalidInputError when the message would be invalid or too large
 */
export function toNotification(e: S3ObjectEvent, category: string): Notification {
  const n: Notification = {
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
  try {
    encodeNotification(n);
  } catch (cause) {
    throw new InvalidInputError(
      "s3-event: building the message",
      `s3://${e.bucket}/${e.key}: ${(cause as Error).message}`,
      { cause },
    );
  }
  return n;
}
