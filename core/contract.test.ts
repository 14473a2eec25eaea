import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import {
  decodeNotification,
  encodeNotification,
  MAX_MESSAGE_BYTES,
  MAX_OBJECT_KEY_BYTES,
  messageKey,
  type Notification,
  notificationSchema,
  UnknownSchemaVersionError,
} from "./contract.ts";
import { InvalidInputError } from "./errors.ts";
import { hostileValue, mutationsOf, ownObject } from "./testing/hostile.ts";

const valid: Notification = {
  schemaVersion: 1,
  eventId: "0123456789abcdef0123456789abcdef",
  fileName: "q3.pdf",
  bucketName: "fanda-uploads",
  objectKey: "reports/positive/q3.pdf",
  uploadTime: "2026-11-27T09:15:30.123Z",
  s3Url: "s3://fanda-uploads/reports/positive/q3.pdf",
  category: "positive",
  size: 10,
  eTag: "abc",
  sequencer: "0055AED6DCD90281E5",
  eventName: "ObjectCreated:Put",
};

describe("contract", () => {
  test("round-trips a notification through encode and decode", () => {
    expect(decodeNotification(encodeNotification(valid))).toEqual(valid);
  });

  test("keys a message by bucket and key", () => {
    expect(messageKey(valid)).toBe("fanda-uploads/reports/positive/q3.pdf");
  });

  test("drops unknown fields instead of rejecting them (forward compatible)", () => {
    expect(decodeNotification(JSON.stringify({ ...valid, addedLater: true }))).toEqual(valid);
  });

  test("accepts events without size and eTag (removals carry neither)", () => {
    const { size: _s, eTag: _e, ...removal } = valid;
    expect(decodeNotification(JSON.stringify(removal))).toEqual(removal);
  });

  test.each([
    ["an empty value", ""],
    ["a null value", null],
    ["invalid JSON", "{oops"],
    ["a JSON array", "[]"],
    ["a JSON string", '"hello"'],
  ])("rejects %s as invalid input", (_name, value) => {
    expect(() => decodeNotification(value)).toThrow(InvalidInputError);
  });

  test("rejects an unknown schema version with its own error", () => {
    const err = (() => {
      try {
        decodeNotification(JSON.stringify({ ...valid, schemaVersion: 2 }));
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(UnknownSchemaVersionError);
    expect((err as UnknownSchemaVersionError).retriable).toBe(false);
    expect((err as Error).message).toContain("unknown schemaVersion 2");
  });

  test("names every invalid field", () => {
    const bad = { ...valid, eventId: "XYZ", category: "Not A Slug", uploadTime: "yesterday" };
    expect(() => decodeNotification(JSON.stringify(bad))).toThrow(
      /eventId: .*32 lower-case hex.*; .*uploadTime.*; .*category/,
    );
  });

  test("refuses to encode a message the topic would not take, as invalid input", () => {
    const huge = { ...valid, eTag: "e".repeat(MAX_MESSAGE_BYTES) };
    expect(() => encodeNotification(huge)).toThrow(InvalidInputError);
    expect(() => encodeNotification(huge)).toThrow(/over the topic's limit/);
  });

  test("an object key may have up to 1,024 UTF-8 bytes, as in S3", () => {
    const at = (key: string) => ({ ...valid, objectKey: key, s3Url: `s3://b/${key}` });
    const fits = "가".repeat(341); // 1,023 bytes
    expect(decodeNotification(encodeNotification(at(fits))).objectKey).toBe(fits);
    expect(() => encodeNotification(at(`${fits}가`))).toThrow(/1024 UTF-8 bytes/);
    expect(() => decodeNotification(JSON.stringify(at(`${fits}가`)))).toThrow(InvalidInputError);
    expect(MAX_OBJECT_KEY_BYTES).toBe(1024);
  });

  test.each([1, 2, 64])("a bucket name of %i characters is invalid", (length) => {
    expect(() => encodeNotification({ ...valid, bucketName: "b".repeat(length) })).toThrow(
      InvalidInputError,
    );
  });

  test("refuses to encode an invalid notification", () => {
    expect(() => encodeNotification({ ...valid, s3Url: "https://x" })).toThrow(/s3Url/);
  });
});

/** Any notification the contract accepts. */
const aValidNotification: fc.Arbitrary<Notification> = fc
  .record(
    {
      eventId: fc.stringMatching(/^[0-9a-f]{32}$/),
      bucket: fc.stringMatching(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/),
      key: fc
        .string({ unit: "grapheme", minLength: 1, maxLength: 200 })
        .filter((k) => k.isWellFormed() && Buffer.byteLength(k) <= MAX_OBJECT_KEY_BYTES),
      uploadTime: fc
        .date({ min: new Date("1970-01-01"), max: new Date("9999-12-31"), noInvalidDate: true })
        .map((d) => d.toISOString()),
      category: fc.stringMatching(/^[a-z][a-z0-9_-]{0,62}$/),
      size: fc.option(fc.maxSafeNat(), { nil: undefined }),
      eTag: fc.option(fc.string({ unit: "binary", minLength: 1 }), { nil: undefined }),
      versionId: fc.option(fc.string({ minLength: 1 }), { nil: undefined }),
      sequencer: fc.string({ unit: "binary", minLength: 1 }),
      eventName: fc.string({ minLength: 1 }),
    },
    {
      requiredKeys: [
        "eventId",
        "bucket",
        "key",
        "uploadTime",
        "category",
        "sequencer",
        "eventName",
      ],
    },
  )
  .map(({ bucket, key, size, eTag, versionId, ...rest }) => ({
    schemaVersion: 1 as const,
    ...rest,
    fileName: key.slice(key.lastIndexOf("/") + 1) || key,
    bucketName: bucket,
    objectKey: key,
    s3Url: `s3://${bucket}/${key}`,
    ...(size === undefined ? {} : { size }),
    ...(eTag === undefined ? {} : { eTag }),
    ...(versionId === undefined ? {} : { versionId }),
  }));

/** Decodes, and checks that whatever is not a notification raises InvalidInputError only. */
function decodesOrRefuses(value: Buffer | string | null | undefined): Notification | undefined {
  try {
    const n = decodeNotification(value);
    expect(decodeNotification(encodeNotification(n))).toEqual(n);
    return n;
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidInputError);
    return undefined;
  }
}

describe("contract (property)", () => {
  test("a valid notification encodes and decodes to itself", () => {
    fc.assert(
      fc.property(aValidNotification, (n) => {
        expect(decodeNotification(encodeNotification(n))).toEqual(n);
        expect(decodeNotification(encodeNotification(n).toString("utf8"))).toEqual(n);
      }),
      { numRuns: 500 },
    );
  });

  test("any value decodes to a notification or raises InvalidInputError, nothing else", () => {
    const values = fc.oneof(
      fc.string(),
      fc.string({ unit: "binary" }),
      fc.jsonValue().map((v) => JSON.stringify(v) ?? ""),
      hostileValue.map((v) => JSON.stringify(v) ?? ""),
      fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)),
      fc.constantFrom(null, undefined, ""),
    );
    fc.assert(
      fc.property(values, (v) => void decodesOrRefuses(v)),
      { numRuns: 500 },
    );
  });

  test("a valid message changed in hostile ways decodes to a valid one or raises InvalidInputError", () => {
    fc.assert(
      fc.property(
        aValidNotification.chain((n) => mutationsOf(n)),
        (changed) => void decodesOrRefuses(JSON.stringify(changed) ?? ""),
      ),
      { numRuns: 500 },
    );
  });

  test("decoding agrees with the schema: the same notification (fields in the same order) or a refusal", () => {
    // One field of a valid notification set to a value at or past an edge of its check.
    const edge = fc.constantFrom<unknown>(
      undefined,
      null,
      true,
      {},
      [],
      "",
      "x",
      "ab",
      "abc",
      "b".repeat(63),
      "b".repeat(64),
      "k".repeat(1024),
      "k".repeat(1025),
      "é".repeat(512),
      "é".repeat(513),
      "\ud800",
      "a\udc00",
      0,
      -0,
      -1,
      1.5,
      2 ** 53 - 1,
      2 ** 53,
      "1",
      "s3:/",
      "s3://",
      "S3://b/k",
      "a".repeat(32),
      "A".repeat(32),
      "a".repeat(31),
      "Positive",
      "general",
      "_x",
      "x".repeat(64),
      "2026-01-01",
      "2026-01-01T00:00:00Z",
      "2026-01-01T00:00:00.123+01:00",
      "2026-13-01T00:00:00Z",
      "2026-01-01T00:00:00",
      "2026-01-01 00:00:00Z",
    );
    const fields = fc.constantFrom(...Object.keys(notificationSchema.shape), "extra", "__proto__");
    const edged = fc
      .tuple(aValidNotification, fields, edge)
      .map(([n, field, value]) =>
        ownObject([...Object.entries(n).filter(([k]) => k !== field), [field, value]]),
      );
    const inputs = fc.oneof(
      aValidNotification.map((n) => n as unknown),
      edged,
      aValidNotification.chain((n) => mutationsOf(n)),
      hostileValue,
    );
    fc.assert(
      fc.property(inputs, (input) => {
        const json = JSON.stringify(input);
        if (json === undefined) return;
        const raw: unknown = JSON.parse(json);
        const schema =
          typeof raw === "object" && raw !== null && !Array.isArray(raw)
            ? notificationSchema.safeParse(raw)
            : undefined;
        let decoded: Notification | undefined;
        try {
          decoded = decodeNotification(json);
        } catch (err) {
          expect(err).toBeInstanceOf(InvalidInputError);
        }
        if (schema?.success) expect(JSON.stringify(decoded)).toBe(JSON.stringify(schema.data));
        else expect(decoded).toBeUndefined();
      }),
      { numRuns: 2000 },
    );
  });

  test("encoding anything gives a message or raises InvalidInputError, nothing else", () => {
    const inputs = fc.oneof(
      hostileValue,
      aValidNotification.chain((n) => mutationsOf(n)),
    );
    fc.assert(
      fc.property(inputs, (input) => {
        try {
          const value = encodeNotification(input as Notification);
          expect(decodeNotification(value)).toBeDefined();
        } catch (err) {
          expect(err).toBeInstanceOf(InvalidInputError);
        }
      }),
      { numRuns: 500 },
    );
  });
});
