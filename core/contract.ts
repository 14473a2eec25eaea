/**
 * THE message contract of topic `fanda-notifications`, shared by producer and processor.
 *
 * Key: `<bucket>/<decoded key>` so that one object's events stay in order on one partition.
 * Value: UTF-8 JSON of {@link Notification}. Headers: {@link HEADERS}.
 * The original message's field names (fileName, bucketName, uploadTime, s3Url, category) are kept as they
 * are; the rest is what delivery needs (a stable idempotency id, the S3 record's facts).
 */
import { z } from "zod";
import { InvalidInputError } from "./errors.ts";

/** The only schema version this code writes and reads. */
export const SCHEMA_VERSION = 1;

/** Kafka header names carried by every message. */
export const HEADERS = {
  contentType: "content-type",
  schemaVersion: "schema-version",
  traceId: "trace-id",
  /** W3C trace context of the message's publish span (see core/tracing.ts). */
  traceparent: "traceparent",
  tracestate: "tracestate",
} as const;

/** Content type of the message value. */
export const CONTENT_TYPE = "application/json";

/** S3's limit on an object key, in UTF-8 bytes. */
export const MAX_OBJECT_KEY_BYTES = 1024;

/**
 * The largest record batch the notification topic takes: its `max.message.bytes`, which
 * {@link encodeNotification} checks every message against, the publisher caps each produce
 * request at, and `ensureTopics` sets on the topic it creates (Kafka's own default is
 * 1 MiB + 12 bytes, so a topic created without it takes at least this much).
 */
export const MAX_MESSAGE_BYTES = 1024 * 1024;

/** The longest `trace-id` header value, in UTF-8 bytes; the publisher refuses longer ones. */
export const MAX_TRACE_ID_BYTES = 256;

/**
 * What a record batch of one message adds to its key, value and headers: the batch header
 * (61 bytes) and the record's own framing (length, attributes, deltas, varint lengths), rounded up.
 */
export const RECORD_OVERHEAD_BYTES = 256;

/** A `traceparent` value's length (version 00: `00-<32 hex>-<16 hex>-<2 hex>`). */
const TRACEPARENT_BYTES = 55;

/** The longest `tracestate` header value the publisher writes (W3C's limit). */
export const MAX_TRACESTATE_BYTES = 512;

/**
 * The most the contract's headers take in a record (names, values, the longest trace id,
 * the W3C trace context with the longest tracestate).
 */
const HEADER_BYTES =
  Buffer.byteLength(HEADERS.contentType + CONTENT_TYPE) +
  Buffer.byteLength(HEADERS.schemaVersion + String(SCHEMA_VERSION)) +
  Buffer.byteLength(HEADERS.traceId) +
  MAX_TRACE_ID_BYTES +
  Buffer.byteLength(HEADERS.traceparent) +
  TRACEPARENT_BYTES +
  Buffer.byteLength(HEADERS.tracestate) +
  MAX_TRACESTATE_BYTES;

/**
 * The bytes one message takes in a record batch of its own: key, value, each header's name
 * and value, and {@link RECORD_OVERHEAD_BYTES}.
 */
export function recordBytes(message: {
  key?: Buffer | string | null;
  value: Buffer | string | null;
  headers?: Record<string, Buffer | string | (Buffer | string)[] | undefined>;
}): number {
  const size = (v: Buffer | string | null | undefined) =>
    v === null || v === undefined ? 0 : typeof v === "string" ? Buffer.byteLength(v) : v.length;
  let bytes = RECORD_OVERHEAD_BYTES + size(message.key) + size(message.value);
  for (const [name, value] of Object.entries(message.headers ?? {})) {
    for (const v of Array.isArray(value) ? value : [value])
      bytes += Buffer.byteLength(name) + size(v);
  }
  return bytes;
}

/** How long S3 allows a bucket name to be, in characters. */
const BUCKET_NAME_CHARS = { min: 3, max: 63 } as const;

/** An S3 bucket name, as long as S3 allows (3 to 63 characters). */
export const bucketNameSchema = z
  .string()
  .min(BUCKET_NAME_CHARS.min, `bucket name is shorter than ${BUCKET_NAME_CHARS.min} characters`)
  .max(BUCKET_NAME_CHARS.max, `bucket name is longer than ${BUCKET_NAME_CHARS.max} characters`);

/** A decoded S3 object key: non-empty, valid Unicode, at most 1,024 UTF-8 bytes. */
export const objectKeySchema = z
  .string()
  .min(1, "object key is empty")
  .refine((k) => k.isWellFormed(), "object key is not valid Unicode (a lone surrogate)")
  .refine(
    (k) => Buffer.byteLength(k) <= MAX_OBJECT_KEY_BYTES,
    `object key is over ${MAX_OBJECT_KEY_BYTES} UTF-8 bytes (S3's limit)`,
  );

const CATEGORY = /^[a-z][a-z0-9_-]{0,62}$/;
const EVENT_ID = /^[0-9a-f]{32}$/;

/** A category name: the built-in ones are `positive`, `negative`, `general`; rules may add others. */
export const categorySchema = z
  .string()
  .regex(CATEGORY, "a lower-case slug such as 'positive' or 'general'");

/** Schema of a version-1 notification. Unknown fields are dropped, not rejected. */
export const notificationSchema = z.object({
  schemaVersion: z.literal(SCHEMA_VERSION),
  eventId: z.string().regex(EVENT_ID, "32 lower-case hex digits"),
  fileName: z.string().min(1),
  bucketName: bucketNameSchema,
  objectKey: objectKeySchema,
  uploadTime: z.iso.datetime({ offset: true }),
  s3Url: z.string().startsWith("s3://"),
  category: categorySchema,
  size: z.number().int().nonnegative().optional(),
  eTag: z.string().min(1).optional(),
  versionId: z.string().min(1).optional(),
  sequencer: z.string().min(1),
  eventName: z.string().min(1),
});

/** One notification: what the producer publishes and every channel receives. */
export type Notification = z.infer<typeof notificationSchema>;

/** The message version is not one this code knows (a newer producer, or garbage). */
export class UnknownSchemaVersionError extends InvalidInputError {
  readonly version: unknown;
  constructor(version: unknown) {
    super(
      "contract: decoding message",
      `unknown schemaVersion ${JSON.stringify(version)} (this build reads ${SCHEMA_VERSION})`,
    );
    this.version = version;
  }
}

function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((i) => `${i.path.length > 0 ? i.path.join(".") : "(root)"}: ${i.message}`)
    .join("; ");
}

/** Kafka message key of a notification: `<bucket>/<key>`. */
export function messageKey(n: Pick<Notification, "bucketName" | "objectKey">): string {
  return `${n.bucketName}/${n.objectKey}`;
}

/**
 * Validates and serialises a notification for Kafka.
 * @throws InvalidInputError when the object does not satisfy the schema, or when the message
 *   (key, value, the contract's headers with the longest trace id) would not fit in
 *   {@link MAX_MESSAGE_BYTES}
 */
export function encodeNotification(n: Notification): Buffer {
  const op = "contract: encoding message";
  const parsed = notificationSchema.safeParse(n);
  if (!parsed.success) throw new InvalidInputError(op, describeIssues(parsed.error));
  const value = Buffer.from(JSON.stringify(parsed.data));
  const bytes = recordBytes({ key: messageKey(parsed.data), value }) + HEADER_BYTES;
  if (bytes > MAX_MESSAGE_BYTES) {
    throw new InvalidInputError(
      op,
      `the message would take ${bytes} bytes, over the topic's limit of ${MAX_MESSAGE_BYTES} (max.message.bytes)`,
    );
  }
  return value;
}

const uploadTimeSchema = notificationSchema.shape.uploadTime;

/** A non-empty own string property of `r`, or undefined. */
const ownText = (r: object, key: string): string | undefined => {
  const v: unknown = Object.hasOwn(r, key) ? (r as Record<string, unknown>)[key] : undefined;
  return typeof v === "string" && v.length > 0 ? v : undefined;
};

/**
 * The notification in `raw` when it passes every check of {@link notificationSchema}, built as
 * the schema builds it (its fields in its order, unknown ones dropped); undefined otherwise,
 * and the schema then says why. The same checks written out: a message decodes in ~60% of
 * the CPU of the full schema parse (docs/benchmarks.md, "Cost per delivery").
 */
function validNotification(raw: object): Notification | undefined {
  const eventId = ownText(raw, "eventId");
  const fileName = ownText(raw, "fileName");
  const bucketName = ownText(raw, "bucketName");
  const objectKey = ownText(raw, "objectKey");
  const uploadTime = ownText(raw, "uploadTime");
  const s3Url = ownText(raw, "s3Url");
  const category = ownText(raw, "category");
  const sequencer = ownText(raw, "sequencer");
  const eventName = ownText(raw, "eventName");
  if (
    eventId === undefined ||
    !EVENT_ID.test(eventId) ||
    fileName === undefined ||
    bucketName === undefined ||
    bucketName.length < BUCKET_NAME_CHARS.min ||
    bucketName.length > BUCKET_NAME_CHARS.max ||
    objectKey === undefined ||
    !objectKey.isWellFormed() ||
    Buffer.byteLength(objectKey) > MAX_OBJECT_KEY_BYTES ||
    uploadTime === undefined ||
    s3Url === undefined ||
    !s3Url.startsWith("s3://") ||
    category === undefined ||
    !CATEGORY.test(category) ||
    sequencer === undefined ||
    eventName === undefined ||
    !uploadTimeSchema.safeParse(uploadTime).success
  ) {
    return undefined;
  }
  const r = raw as Record<string, unknown>;
  const has = (key: string) => Object.hasOwn(r, key) && r[key] !== undefined;
  const size = has("size") ? r.size : undefined;
  if (size !== undefined && !(Number.isSafeInteger(size) && (size as number) >= 0))
    return undefined;
  const eTag = has("eTag") ? ownText(r, "eTag") : undefined;
  const versionId = has("versionId") ? ownText(r, "versionId") : undefined;
  if ((has("eTag") && eTag === undefined) || (has("versionId") && versionId === undefined)) {
    return undefined;
  }
  return {
    schemaVersion: SCHEMA_VERSION,
    eventId,
    fileName,
    bucketName,
    objectKey,
    uploadTime,
    s3Url,
    category,
    ...(size === undefined ? {} : { size: size as number }),
    ...(eTag === undefined ? {} : { eTag }),
    ...(versionId === undefined ? {} : { versionId }),
    sequencer,
    eventName,
  };
}

/**
 * Parses and validates a message value.
 * @throws UnknownSchemaVersionError for a version other than {@link SCHEMA_VERSION}
 * @throws InvalidInputError for anything else that is not a valid notification
 */
export function decodeNotification(value: Buffer | string | null | undefined): Notification {
  const op = "contract: decoding message";
  if (value === null || value === undefined || value.length === 0) {
    throw new InvalidInputError(op, "message has no value");
  }
  let raw: unknown;
  try {
    raw = JSON.parse(typeof value === "string" ? value : value.toString("utf8"));
  } catch (cause) {
    throw new InvalidInputError(op, "value is not valid JSON", { cause });
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new InvalidInputError(op, "value is not a JSON object");
  }
  const version = (raw as { schemaVersion?: unknown }).schemaVersion;
  if (version !== SCHEMA_VERSION) throw new UnknownSchemaVersionError(version);
  const valid = validNotification(raw);
  if (valid) return valid;
  const parsed = notificationSchema.safeParse(raw);
  if (!parsed.success) throw new InvalidInputError(op, describeIssues(parsed.error));
  return parsed.data;
}
