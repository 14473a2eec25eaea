import { describe, expect, test } from "bun:test";
import {
  decodeNotification,
  encodeNotification,
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

  test("refuses to encode an invalid notification", () => {
    expect(() => encodeNotification({ ...valid, s3Url: "https://x" })).toThrow(/s3Url/);
  });
});
