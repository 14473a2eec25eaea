/**
 * Sends S3 "ObjectCreated:Put" events to the local ingest, as S3 would after an upload.
 *
 *   bun scripts/upload.ts [KEY ...] [--bucket NAME] [--url URL] [--size BYTES]
 *
 * Without keys it sends one sample per category (positive, negative, general).
 * Keys are encoded as S3 encodes them (spaces as +, UTF-8 percent-encoding).
 */
import { parseArgs } from "node:util";
import { encodeS3Key } from "../producer/src/s3-event.ts";

/** Sample keys, one per built-in category. */
export const SAMPLE_KEYS = [
  "reports/positive/2026 Q3 실적 보고서.pdf",
  "reports/negative/incident review #42.docx",
  "uploads/team photo.png",
];

/** Builds a direct S3 event notification with one Put record per key. */
export function s3PutEvent(bucket: string, keys: readonly string[], size = 1024): unknown {
  const now = Date.now();
  return {
    Records: keys.map((key, i) => ({
      eventVersion: "2.1",
      eventSource: "aws:s3",
      awsRegion: "ap-northeast-2",
      eventTime: new Date(now).toISOString(),
      eventName: "ObjectCreated:Put",
      userIdentity: { principalId: "AWS:LOCAL-UPLOAD" },
      requestParameters: { sourceIPAddress: "127.0.0.1" },
      responseElements: { "x-amz-request-id": crypto.randomUUID() },
      s3: {
        s3SchemaVersion: "1.0",
        configurationId: "fanda-local",
        bucket: { name: bucket, arn: `arn:aws:s3:::${bucket}` },
        object: {
          key: encodeS3Key(key),
          size,
          eTag: crypto.randomUUID().replace(/-/g, ""),
          // Unique per upload, as S3's sequencer is per object version.
          sequencer: `${(now * 1000 + i).toString(16).toUpperCase()}`.padStart(18, "0"),
        },
      },
    })),
  };
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      bucket: { type: "string", default: "fanda-uploads-local" },
      url: {
        type: "string",
        default: `http://127.0.0.1:${process.env.PRODUCER_PORT ?? "8081"}/s3-events`,
      },
      size: { type: "string", default: "1024" },
    },
  });
  const keys = positionals.length > 0 ? positionals : SAMPLE_KEYS;
  const size = Number(values.size);
  if (!Number.isInteger(size) || size < 0) {
    console.error(`--size: expected a non-negative integer, got ${values.size}`);
    process.exit(2);
  }
  const res = await fetch(values.url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(s3PutEvent(values.bucket, keys, size)),
  }).catch((err: Error) => {
    console.error(
      `cannot reach the ingest at ${values.url}: ${err.message} (is scripts/dev running?)`,
    );
    process.exit(1);
  });
  const text = await res.text();
  console.log(`[upload] ${keys.length} object(s) → ${values.url}: ${res.status} ${text}`);
  if (res.status !== 202) process.exit(1);
}
