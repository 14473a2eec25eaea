import { describe, expect, test } from "bun:test";
import {
  decodeNotification,
  encodeNotification,
  MAX_MESSAGE_BYTES,
  MAX_OBJECT_KEY_BYTES,
  messageKey,
  type Notification,
  UnknownSchemaVersionError,
} from "./contract.ts";
import { InvalidInputError } from "./errors.ts";

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
