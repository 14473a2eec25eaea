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
} as const;

/** Content type of the message value. */
export const CONTENT_TYPE = "application/json";

/** A category name: the built-in ones are `positive`, `negative`, `general`; rules may add others. */
export const categorySchema = z
  .string()
  .regex(/^[a-z][a-z0-9_-]{0,62}$/, "a lower-case slug such as 'positive' or 'general'");

/** Schema of a version-1 notification. Unknown fields are dropped, not rejected. */
export const notificationSchema = z.object({
  schemaVersion: z.literal(SCHEMA_VERSION),
  eventId: z.string().regex(/^[0-9a-f]{32}$/, "32 lower-case hex digits"),
  fileName: z.string().min(1),
  bucketName: z.string().min(3).max(63),
  objectKey: z.string().min(1),
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
 * @throws InvalidInputError when the object does not satisfy the schema (a producer bug).
 */
export function encodeNotification(n: Notification): Buffer {
  const parsed = notificationSchema.safeParse(n);
  if (!parsed.success) {
    throw new InvalidInputError("contract: encoding message", describeIssues(parsed.error));
  }
  return Buffer.from(JSON.stringify(parsed.data));
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
  const parsed = notificationSchema.safeParse(raw);
  if (!parsed.success) throw new InvalidInputError(op, describeIssues(parsed.error));
  return parsed.data;
}
