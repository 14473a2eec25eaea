import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { decodeNotification, encodeNotification, type Notification } from "../../core/contract.ts";
import { InvalidInputError } from "../../core/errors.ts";
import { hostileString, hostileValue, mutationsOf } from "../../core/testing/hostile.ts";
import ebCreated from "./fixtures/eventbridge-created.json";
import ebDeleted from "./fixtures/eventbridge-deleted.json";
import multi from "./fixtures/s3-multi.json";
import put from "./fixtures/s3-put.json";
import testEvent from "./fixtures/s3-test-event.json";
import snsLambda from "./fixtures/sns-lambda.json";
import sqsLambda from "./fixtures/sqs-lambda.json";
import {
  decodeS3Key,
  encodeS3Key,
  eventIdOf,
  fileNameOf,
  isSqsEvent,
  parseS3Event,
  parseSqsRecords,
  type S3ObjectEvent,
  toNotification,
} from "./s3-event.ts";

describe("decodeS3Key", () => {
  test.each([
    ["plain/key.txt", "plain/key.txt"],
    ["with+spaces+here.pdf", "with spaces here.pdf"],
    ["literal%2Bplus.txt", "literal+plus.txt"],
    ["%EC%8B%A4%EC%A0%81+%EB%B3%B4%EA%B3%A0%EC%84%9C.pdf", "실적 보고서.pdf"],
    ["a%25b", "a%b"],
    ["%28parens%29+%26+more", "(parens) & more"],
  ])("decodes %s", (raw, decoded) => {
    expect(decodeS3Key(raw)).toBe(decoded);
  });

  test.each(["bad%", "bad%zz", "%E0%A4%A"])("rejects malformed encoding %s", (raw) => {
    expect(() => decodeS3Key(raw)).toThrow(InvalidInputError);
  });

  test.each(["a b+c/d", "실적/보고서 (최종).pdf", "100% done?.txt", "x&y=z#frag"])(
    "round-trips %s through encodeS3Key",
    (key) => {
      expect(decodeS3Key(encodeS3Key(key))).toBe(key);
    },
  );
});

describe("parseS3Event", () => {
  test("reads the AWS example Put event with a URL-encoded Korean key", () => {
    expect(parseS3Event(put)).toEqual({
      objects: [
        {
          bucket: "fanda-uploads-dev",
          key: "reports/positive/Q3 실적 report+(final).pdf",
          eventName: "ObjectCreated:Put",
          eventTime: "2026-11-27T09:15:30.123Z",
          sequencer: "0055AED6DCD90281E5",
          size: 482113,
          eTag: "d41d8cd98f00b204e9800998ecf8427e",
          versionId: "096fKKXTRTtl3on89fVO.nfljtsv6qko",
        },
      ],
      skipped: [],
    });
  });

  test("skips s3:TestEvent without error", () => {
    expect(parseS3Event(testEvent)).toEqual({
      objects: [],
      skipped: [{ at: "event", reason: "s3:TestEvent" }],
    });
  });

  test("reads every record of a multi-record event and skips removals by default", () => {
    const parsed = parseS3Event(multi);
    expect(parsed.objects.map((o) => o.key)).toEqual([
      "reports/negative/incident 2026-11.csv",
      "notes/회의록.txt",
    ]);
    expect(parsed.skipped).toEqual([
      { at: "Records[1]", reason: "ObjectRemoved:Delete (removals are not notified)" },
    ]);
  });

  test("notifies removals when configured", () => {
    const parsed = parseS3Event(multi, { notifyOnRemoved: true });
    expect(parsed.objects.map((o) => o.eventName)).toEqual([
      "ObjectCreated:CompleteMultipartUpload",
      "ObjectRemoved:Delete",
      "ObjectCreated:Copy",
    ]);
    expect(parsed.objects[1]).not.toHaveProperty("size");
  });

  const record = put.Records[0] as Record<string, unknown>;
  const withObject = (object: unknown) => ({
    Records: [{ ...record, s3: { bucket: { name: "bkt" }, object } }],
  });

  test.each([
    ["not an object", "hello", /not a JSON object/],
    ["an array", [], /not a JSON object/],
    ["an empty object", {}, /no Records array/],
    ["no Records", { foo: 1 }, /no Records array/],
    ["null", null, /not a JSON object/],
    ["Records not an array", { Records: {} }, /no Records array/],
    [
      "a foreign eventSource",
      { Records: [{ ...record, eventSource: "aws:kinesis" }] },
      /eventSource/,
    ],
    ["eventVersion 1.0", { Records: [{ ...record, eventVersion: "1.0" }] }, /eventVersion/],
    ["a bad eventTime", { Records: [{ ...record, eventTime: "soon" }] }, /eventTime/],
    ["no key", withObject({ sequencer: "1" }), /Records\[0\]: s3\.object\.key/],
    ["a non-string key", withObject({ key: 42, sequencer: "1" }), /s3\.object\.key/],
    ["a record that is not an object", { Records: ["x"] }, /Records\[0\]: not a JSON object/],
    ["an empty key", withObject({ key: "", sequencer: "1" }), /object key is empty/],
    ["no sequencer", withObject({ key: "k" }), /sequencer/],
    ["a negative size", withObject({ key: "k", sequencer: "1", size: -1 }), /size/],
    [
      "bad key encoding",
      withObject({ key: "bad%zz", sequencer: "1" }),
      /not valid percent-encoded/,
    ],
    [
      "no bucket name",
      { Records: [{ ...record, s3: { bucket: {}, object: { key: "k", sequencer: "1" } } }] },
      /s3\.bucket\.name/,
    ],
  ])("rejects %s with a clear error", (_name, input, message) => {
    expect(() => parseS3Event(input)).toThrow(message);
    expect(() => parseS3Event(input)).toThrow(InvalidInputError);
  });

  test("one bad record rejects the whole event", () => {
    const event = { Records: [record, { ...record, eventSource: "nope" }] };
    expect(() => parseS3Event(event)).toThrow(/Records\[1\]/);
  });

  test("skips events that are neither created nor removed", () => {
    const event = { Records: [{ ...record, eventName: "ObjectRestore:Completed" }] };
    expect(parseS3Event(event).skipped[0]?.reason).toContain("not an object event");
  });
});

describe("parseS3Event checks what the contract and the broker require", () => {
  const record = put.Records[0] as Record<string, unknown>;
  const s3 = record.s3 as { bucket: object; object: object };
  const direct = (bucket: string, key: string) => ({
    Records: [
      { ...record, s3: { ...s3, bucket: { name: bucket }, object: { ...s3.object, key } } },
    ],
  });
  const bridged = (bucket: string, key: string) => ({
    ...ebCreated,
    detail: {
      ...ebCreated.detail,
      bucket: { name: bucket },
      object: { ...ebCreated.detail.object, key },
    },
  });

  test.each([1, 2, 64, 100])("rejects a bucket name of %i characters", (length) => {
    const bucket = "b".repeat(length);
    for (const event of [direct(bucket, "k"), bridged(bucket, "k")]) {
      expect(() => parseS3Event(event)).toThrow(InvalidInputError);
      expect(() => parseS3Event(event)).toThrow(/bucket\.name/);
    }
  });

  test.each([3, 63])("accepts a bucket name of %i characters", (length) => {
    const bucket = "b".repeat(length);
    expect(parseS3Event(direct(bucket, "k")).objects[0]?.bucket).toBe(bucket);
    expect(parseS3Event(bridged(bucket, "k")).objects[0]?.bucket).toBe(bucket);
  });

  test("rejects a decoded key over 1,024 UTF-8 bytes and accepts one of exactly 1,024", () => {
    const exact = `${"가".repeat(341)}a`; // 1,024 bytes
    expect(parseS3Event(direct("bkt", encodeS3Key(exact))).objects[0]?.key).toBe(exact);
    expect(parseS3Event(bridged("bkt", exact)).objects[0]?.key).toBe(exact);
    const over = `${exact}a`;
    expect(() => parseS3Event(direct("bkt", encodeS3Key(over)))).toThrow(/1024 UTF-8 bytes/);
    expect(() => parseS3Event(bridged("bkt", over))).toThrow(/1024 UTF-8 bytes/);
  });

  test("rejects an EventBridge key that is not valid Unicode (a lone surrogate)", () => {
    expect(() => parseS3Event(bridged("bkt", "a\ud800b"))).toThrow(InvalidInputError);
  });

  test("rejects an object whose message would exceed the topic's message size", () => {
    const [object] = parseS3Event(put).objects;
    if (!object) throw new Error("fixture has no object");
    const huge = { ...object, eTag: "e".repeat(1024 * 1024) };
    expect(() => toNotification(huge, "positive")).toThrow(InvalidInputError);
    expect(() => toNotification(huge, "positive")).toThrow(/over the topic's limit/);
  });
});

describe("eventIdOf", () => {
  const base = { bucket: "b", key: "k", sequencer: "00A1" };

  test("is stable for the same object version", () => {
    expect(eventIdOf(base)).toBe(eventIdOf({ ...base }));
    expect(eventIdOf(base)).toMatch(/^[0-9a-f]{32}$/);
  });

  test("prefers versionId over sequencer", () => {
    const v = { ...base, versionId: "v1" };
    expect(eventIdOf(v)).toBe(eventIdOf({ ...v, sequencer: "00B2" }));
    expect(eventIdOf(v)).not.toBe(eventIdOf(base));
  });

  test("differs per bucket, key and version", () => {
    const ids = new Set([
      eventIdOf(base),
      eventIdOf({ ...base, bucket: "c" }),
      eventIdOf({ ...base, key: "k2" }),
      eventIdOf({ ...base, sequencer: "00A2" }),
      eventIdOf({ ...base, versionId: "00A1" }),
    ]);
    expect(ids.size).toBe(5);
  });
});

describe("eventIdOf tells distinct S3 events apart", () => {
  const version = { bucket: "bkt", key: "k", versionId: "v1", sequencer: "00A1" };

  test("the removal of a version has another id than that version's upload", () => {
    const upload = eventIdOf({ ...version, eventName: "ObjectCreated:Put" });
    const removal = eventIdOf({ ...version, sequencer: "00B2", eventName: "ObjectRemoved:Delete" });
    expect(removal).not.toBe(upload);
    expect(removal).toMatch(/^[0-9a-f]{32}$/);
  });

  test("an upload's id does not depend on how S3 named the creation", () => {
    expect(eventIdOf({ ...version, eventName: "ObjectCreated:Copy" })).toBe(
      eventIdOf({ ...version, eventName: "ObjectCreated:Put" }),
    );
    expect(eventIdOf({ ...version, eventName: "ObjectCreated:Put" })).toBe(eventIdOf(version));
  });

  test("a delete marker's creation and its permanent removal have distinct ids", () => {
    // DELETE without a version id creates a marker (its own version id); DELETE of that
    // version id later removes the marker: ObjectRemoved:Delete with the same version id.
    const marker = { ...version, versionId: "m1", eventName: "ObjectRemoved:DeleteMarkerCreated" };
    const removed = { ...marker, sequencer: "00C3", eventName: "ObjectRemoved:Delete" };
    expect(eventIdOf(removed)).not.toBe(eventIdOf(marker));
  });

  test("uploads while versioning is suspended (version id 'null') are told apart by sequencer", () => {
    const first = { ...version, versionId: "null", eventName: "ObjectCreated:Put" };
    expect(eventIdOf(first)).not.toBe(eventIdOf({ ...first, sequencer: "00B2" }));
  });
});

describe("eventIdOf across a deploy", () => {
  // Ids the release before this one gave these fixtures: an event in flight during a deploy
  // (published, then redelivered by SQS to the new code) must keep its id, or it is sent twice.
  // Only events the old ids could not tell apart (the permanent removal of a version, version
  // id 'null') may change.
  const idsOf = (event: unknown) =>
    parseS3Event(event, { notifyOnRemoved: true }).objects.map(
      (o) => `${o.eventName} ${toNotification(o, "general").eventId}`,
    );

  test("uploads, delete markers and removals in an unversioned bucket keep their ids", () => {
    expect(idsOf(put)).toEqual(["ObjectCreated:Put b4518c1204617185be9571505c34050b"]);
    expect(idsOf(ebCreated)).toEqual(["ObjectCreated:Put 0b7ca8de3b9ce7c54afb6a5e25f3662f"]);
    expect(idsOf(multi)).toEqual([
      "ObjectCreated:CompleteMultipartUpload b00d74527813b5432900582372af1d2f",
      "ObjectRemoved:Delete 152bef7a5c5a4164ffd9579ecac45372",
      "ObjectCreated:Copy fc915667f082f8989ca3dcf0e3498f6b",
    ]);
    expect(idsOf(ebDeleted)).toEqual([
      "ObjectRemoved:DeleteMarkerCreated 6cedb212160beac65819bd4b157466bd",
    ]);
  });
});

/** One S3 event's facts, and the same event in every envelope it can reach us in. */
interface OneEvent {
  bucket: string;
  key: string;
  versionId: string | undefined;
  sequencer: string;
  kind: "created" | "deleted" | "marker";
  eventTime: string;
}

const anEvent: fc.Arbitrary<OneEvent> = fc.record({
  bucket: fc.stringMatching(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/),
  key: fc
    .string({ unit: "grapheme", minLength: 1, maxLength: 40 })
    .filter((k) => k.isWellFormed() && Buffer.byteLength(k) <= 1024),
  versionId: fc.option(fc.stringMatching(/^[A-Za-z0-9._]{1,32}$/), { nil: undefined }),
  sequencer: fc.stringMatching(/^[0-9A-F]{16}$/),
  kind: fc.constantFrom("created", "deleted", "marker"),
  eventTime: fc
    .date({ min: new Date("2020-01-01"), max: new Date("2030-01-01"), noInvalidDate: true })
    .map((d) => d.toISOString()),
});

const anEventExample: OneEvent = {
  bucket: "bkt",
  key: "k",
  versionId: undefined,
  sequencer: "00A1",
  kind: "created",
  eventTime: "2026-01-01T00:00:00.000Z",
};

function envelopesOf(e: OneEvent): Record<string, unknown> {
  const created = e.kind === "created";
  const eventName = created
    ? "ObjectCreated:Put"
    : e.kind === "marker"
      ? "ObjectRemoved:DeleteMarkerCreated"
      : "ObjectRemoved:Delete";
  const direct = {
    Records: [
      {
        eventVersion: "2.1",
        eventSource: "aws:s3",
        awsRegion: "ap-northeast-2",
        eventTime: e.eventTime,
        eventName,
        s3: {
          s3SchemaVersion: "1.0",
          bucket: { name: e.bucket, arn: `arn:aws:s3:::${e.bucket}` },
          object: {
            key: encodeS3Key(e.key),
            sequencer: e.sequencer,
            ...(e.versionId ? { versionId: e.versionId } : {}),
            ...(created ? { size: 5, eTag: "b1946ac92492d2347c6235b4d2611184" } : {}),
          },
        },
      },
    ],
  };
  const sns = { Type: "Notification", MessageId: "n-1", Message: JSON.stringify(direct) };
  const sqs = (body: unknown) => ({
    Records: [{ eventSource: "aws:sqs", messageId: "m-1", body: JSON.stringify(body) }],
  });
  const eventBridge = {
    version: "0",
    "detail-type": created ? "Object Created" : "Object Deleted",
    source: "aws.s3",
    time: e.eventTime,
    detail: {
      bucket: { name: e.bucket },
      object: {
        key: e.key,
        sequencer: e.sequencer,
        ...(e.versionId ? { "version-id": e.versionId } : {}),
        ...(created ? { size: 5, etag: "b1946ac92492d2347c6235b4d2611184" } : {}),
      },
      ...(created
        ? { reason: "PutObject" }
        : {
            reason: "DeleteObject",
            "deletion-type": e.kind === "marker" ? "Delete Marker Created" : "Permanently Deleted",
          }),
    },
  };
  return {
    direct,
    "SNS (Lambda)": { Records: [{ EventSource: "aws:sns", Sns: sns }] },
    "SNS envelope": sns,
    "SQS of S3": sqs(direct),
    "SQS of SNS": sqs(sns),
    eventBridge,
  };
}

describe("eventIdOf across envelopes (property)", () => {
  test("one event has one id in every envelope, also after a redelivery", () => {
    fc.assert(
      fc.property(anEvent, (e) => {
        const ids = Object.entries(envelopesOf(e)).map(([shape, event]) => {
          const { objects } = parseS3Event(JSON.parse(JSON.stringify(event)), {
            notifyOnRemoved: true,
          });
          expect(objects.map((o) => o.key)).toEqual([e.key]);
          const [object] = objects as [S3ObjectEvent];
          return [shape, toNotification(object, "general").eventId];
        });
        const [first] = ids;
        for (const id of ids) expect(id[1]).toBe(first?.[1] as string);
      }),
      { numRuns: 200 },
    );
  });

  test("the upload and the removal of one version have distinct ids", () => {
    fc.assert(
      fc.property(
        anEvent,
        fc.stringMatching(/^[A-Za-z0-9._]{1,32}$/),
        fc.stringMatching(/^[0-9A-F]{16}$/),
        fc.boolean(),
        (e, versionId, removalSequencer, viaEventBridge) => {
          const idOf = (x: OneEvent) => {
            const event = envelopesOf(x)[viaEventBridge ? "eventBridge" : "direct"];
            const [object] = parseS3Event(event, { notifyOnRemoved: true }).objects;
            return object && eventIdOf(object);
          };
          const upload = idOf({ ...e, versionId, kind: "created" });
          const removal = idOf({ ...e, versionId, kind: "deleted", sequencer: removalSequencer });
          expect(removal).not.toBe(upload);
        },
      ),
      { numRuns: 200 },
    );
  });

  test("a delete marker's creation and its permanent removal have distinct ids", () => {
    fc.assert(
      fc.property(
        anEvent,
        fc.stringMatching(/^[A-Za-z0-9._]{1,32}$/),
        fc.stringMatching(/^[0-9A-F]{16}$/),
        fc.constantFrom(...(Object.keys(envelopesOf(anEventExample)) as string[])),
        (e, markerVersion, removalSequencer, shape) => {
          const idOf = (x: OneEvent) => {
            const event = envelopesOf(x)[shape];
            const [object] = parseS3Event(event, { notifyOnRemoved: true }).objects;
            return object && toNotification(object, "general").eventId;
          };
          const marker = idOf({ ...e, versionId: markerVersion, kind: "marker" });
          const removal = idOf({
            ...e,
            versionId: markerVersion,
            kind: "deleted",
            sequencer: removalSequencer,
          });
          expect(marker).toBeDefined();
          expect(removal).not.toBe(marker);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe("toNotification", () => {
  test.each([
    ["a/b/c.txt", "c.txt"],
    ["c.txt", "c.txt"],
    ["folder/", "folder"],
    ["/", "/"],
  ])("fileName of %s is %s", (key, name) => {
    expect(fileNameOf(key)).toBe(name);
  });

  test("builds the original message fields plus the delivery fields", () => {
    const [object] = parseS3Event(put).objects;
    if (!object) throw new Error("fixture has no object");
    const n = toNotification(object, "positive");
    expect(n).toEqual({
      schemaVersion: 1,
      eventId: eventIdOf(object),
      fileName: "Q3 실적 report+(final).pdf",
      bucketName: "fanda-uploads-dev",
      objectKey: "reports/positive/Q3 실적 report+(final).pdf",
      uploadTime: "2026-11-27T09:15:30.123Z",
      s3Url: "s3://fanda-uploads-dev/reports/positive/Q3 실적 report+(final).pdf",
      category: "positive",
      size: 482113,
      eTag: "d41d8cd98f00b204e9800998ecf8427e",
      versionId: "096fKKXTRTtl3on89fVO.nfljtsv6qko",
      sequencer: "0055AED6DCD90281E5",
      eventName: "ObjectCreated:Put",
    });
  });
});

describe("parseS3Event envelopes", () => {
  const putKey = "reports/positive/Q3 실적 report+(final).pdf";

  test("unwraps a Lambda SNS event", () => {
    const parsed = parseS3Event(snsLambda);
    expect(parsed.objects.map((o) => o.key)).toEqual([putKey]);
  });

  test("unwraps a Lambda SQS event whose bodies are S3 events, SNS envelopes and test events", () => {
    const parsed = parseS3Event(sqsLambda);
    expect(parsed.objects.map((o) => o.key)).toEqual([
      putKey,
      "reports/negative/incident 2026-11.csv",
      "notes/회의록.txt",
    ]);
    expect(parsed.skipped).toEqual([
      {
        at: "Records[1].body.Message.Records[1]",
        reason: "ObjectRemoved:Delete (removals are not notified)",
      },
      { at: "Records[2].body", reason: "s3:TestEvent" },
    ]);
  });

  test("reads EventBridge Object Created without decoding the key", () => {
    expect(parseS3Event(ebCreated)).toEqual({
      objects: [
        {
          bucket: "fanda-uploads-dev",
          key: "reports/positive/분기 보고서+v2.pdf",
          eventName: "ObjectCreated:Put",
          eventTime: "2026-11-27T11:00:00Z",
          sequencer: "617f08299329d189",
          size: 5,
          eTag: "b1946ac92492d2347c6235b4d2611184",
          versionId: "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e",
        },
      ],
      skipped: [],
    });
  });

  test("maps EventBridge reasons to S3 event names", () => {
    const withReason = (reason: string) =>
      parseS3Event({ ...ebCreated, detail: { ...ebCreated.detail, reason } }).objects[0]?.eventName;
    expect(withReason("CompleteMultipartUpload")).toBe("ObjectCreated:CompleteMultipartUpload");
    expect(withReason("CopyObject")).toBe("ObjectCreated:Copy");
    expect(withReason("POST Object")).toBe("ObjectCreated:Post");
  });

  test.each(["constructor", "toString", "__proto__", "hasOwnProperty", "valueOf"])(
    "reads an EventBridge reason named like a built-in property (%s) as an unknown reason",
    (reason) => {
      const parsed = parseS3Event({ ...ebCreated, detail: { ...ebCreated.detail, reason } });
      expect(parsed.objects[0]?.eventName).toBe(`ObjectCreated:${reason}`);
    },
  );

  test("any EventBridge reason gives a created event name, never an inherited property", () => {
    const reasons = fc.oneof(
      fc.constantFrom(...Object.getOwnPropertyNames(Object.prototype)),
      fc.string(),
      fc.string({ unit: "binary" }),
    );
    fc.assert(
      fc.property(reasons, (reason) => {
        const [object] = parseS3Event({
          ...ebCreated,
          detail: { ...ebCreated.detail, reason },
        }).objects;
        expect(typeof object?.eventName).toBe("string");
        expect(object?.eventName.startsWith("ObjectCreated:")).toBe(true);
      }),
    );
  });

  test("skips EventBridge Object Deleted by default and notifies it when configured", () => {
    expect(parseS3Event(ebDeleted).skipped).toEqual([
      { at: "event", reason: "ObjectRemoved:DeleteMarkerCreated (removals are not notified)" },
    ]);
    expect(parseS3Event(ebDeleted, { notifyOnRemoved: true }).objects[0]).toMatchObject({
      key: "uploads/old.txt",
      eventName: "ObjectRemoved:DeleteMarkerCreated",
    });
  });

  test("skips an EventBridge lifecycle expiration like S3's LifecycleExpiration:* events, even with removals on", () => {
    const expired = (deletion: string) => ({
      ...ebDeleted,
      detail: { ...ebDeleted.detail, reason: "Lifecycle Expiration", "deletion-type": deletion },
    });
    expect(parseS3Event(expired("Permanently Deleted"), { notifyOnRemoved: true })).toMatchObject({
      objects: [],
      skipped: [{ reason: "LifecycleExpiration:Delete (not an object event)" }],
    });
    expect(
      parseS3Event(expired("Delete Marker Created"), { notifyOnRemoved: true }).skipped[0]?.reason,
    ).toBe("LifecycleExpiration:DeleteMarkerCreated (not an object event)");
  });

  test("skips other EventBridge S3 events", () => {
    const restore = { ...ebCreated, "detail-type": "Object Restore Completed" };
    expect(parseS3Event(restore).skipped[0]?.reason).toContain("not an object event");
  });

  test.each([
    [
      "an SQS body that is not JSON",
      { Records: [{ eventSource: "aws:sqs", messageId: "m", body: "{" }] },
      /Records\[0\]\.body: not valid JSON/,
    ],
    [
      "an SQS record without body",
      { Records: [{ eventSource: "aws:sqs", messageId: "m" }] },
      /Records\[0\]\.body: expected a JSON string/,
    ],
    [
      "an SNS record whose Message is not JSON",
      { Records: [{ EventSource: "aws:sns", Sns: { Message: "hello" } }] },
      /Records\[0\]\.Sns\.Message: not valid JSON/,
    ],
    [
      "an EventBridge event without bucket",
      { ...ebCreated, detail: { ...ebCreated.detail, bucket: {} } },
      /detail\.bucket\.name/,
    ],
    ["an EventBridge event with a bad time", { ...ebCreated, time: "noon" }, /event: time/],
  ])("rejects %s", (_name, input, message) => {
    expect(() => parseS3Event(input)).toThrow(message);
  });

  test("refuses envelopes nested deeper than SQS → SNS → S3", () => {
    let event: unknown = multi;
    for (let i = 0; i < 4; i++) event = { Type: "Notification", Message: JSON.stringify(event) };
    expect(() => parseS3Event(event)).toThrow(/nested deeper/);
  });
});

describe("parseSqsRecords", () => {
  test("recognises a Lambda SQS event", () => {
    expect(isSqsEvent(sqsLambda)).toBe(true);
    expect(isSqsEvent(put)).toBe(false);
    expect(isSqsEvent({ Records: [] })).toBe(false);
  });

  test("parses each message on its own, so a bad one fails only itself", () => {
    const first = sqsLambda.Records[0];
    const event = {
      Records: [first, { ...first, messageId: "bad-1", body: "not json" }, sqsLambda.Records[2]],
    };
    const results = parseSqsRecords(event as { Records: Record<string, unknown>[] });
    expect(results.map((r) => r.messageId)).toEqual([
      "059f36b4-87a3-44ab-83d2-661975830a7d",
      "bad-1",
      "8a3f1c2e-5b6d-4e7f-9a0b-1c2d3e4f5a6b",
    ]);
    const [ok, bad, skipped] = results;
    expect(ok && "parsed" in ok && ok.parsed.objects).toHaveLength(1);
    expect(bad && "error" in bad && bad.error.message).toContain("Records[1].body: not valid JSON");
    expect(skipped && "parsed" in skipped && skipped.parsed.skipped).toEqual([
      { at: "Records[2].body", reason: "s3:TestEvent" },
    ]);
  });
});

/**
 * What every parser output must satisfy: objects the contract accepts, with a notification
 * that encodes and decodes to itself, or an InvalidInputError and nothing else.
 */
function checkParsed(input: unknown, options = { notifyOnRemoved: true }): void {
  let parsed: ReturnType<typeof parseS3Event>;
  try {
    parsed = parseS3Event(input, options);
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidInputError);
    return;
  }
  for (const o of parsed.objects) {
    expect(typeof o.eventName).toBe("string");
    expect(/^Object(Created|Removed):/.test(o.eventName)).toBe(true);
    expect(o.bucket.length).toBeGreaterThanOrEqual(3);
    expect(o.bucket.length).toBeLessThanOrEqual(63);
    expect(o.key.isWellFormed()).toBe(true);
    expect(Buffer.byteLength(o.key)).toBeLessThanOrEqual(1024);
    let n: Notification;
    try {
      n = toNotification(o, "general");
    } catch (err) {
      expect(err).toBeInstanceOf(InvalidInputError);
      continue;
    }
    expect(decodeNotification(encodeNotification(n))).toEqual(n);
  }
  for (const s of parsed.skipped) expect(typeof s.reason).toBe("string");
}

describe("parsers (property)", () => {
  const fixtures = { put, multi, testEvent, snsLambda, sqsLambda, ebCreated, ebDeleted };

  test("any JSON value parses or raises InvalidInputError, nothing else", () => {
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue(), hostileValue), (input) => checkParsed(input)),
      { numRuns: 500 },
    );
  });

  test.each(Object.entries(fixtures))(
    "%s changed in hostile ways parses or raises InvalidInputError, nothing else",
    (_name, fixture) => {
      fc.assert(
        fc.property(mutationsOf(fixture), (input) => checkParsed(input)),
        { numRuns: 300 },
      );
    },
  );

  test("well-formed events of any valid content parse to their facts, in every envelope", () => {
    fc.assert(
      fc.property(anEvent, (e) => {
        for (const event of Object.values(envelopesOf(e))) {
          const [o] = parseS3Event(event, { notifyOnRemoved: true }).objects;
          expect(o).toMatchObject({ bucket: e.bucket, key: e.key, sequencer: e.sequencer });
          expect(o?.versionId).toBe(e.versionId);
          checkParsed(event);
        }
      }),
      { numRuns: 200 },
    );
  });

  test("bucket names and keys of any length are checked at parse time", () => {
    const lengths = fc.record({
      bucket: fc.integer({ min: 1, max: 100 }),
      keyBytes: fc.integer({ min: 1, max: 1100 }),
      wide: fc.boolean(),
    });
    fc.assert(
      fc.property(lengths, anEvent, ({ bucket, keyBytes, wide }, e) => {
        const key = wide ? "가".repeat(Math.ceil(keyBytes / 3)) : "k".repeat(keyBytes);
        const event = { ...e, bucket: "b".repeat(bucket), key, kind: "created" as const };
        const fits = bucket >= 3 && bucket <= 63 && Buffer.byteLength(key) <= 1024;
        for (const input of Object.values(envelopesOf(event))) {
          if (fits) expect(parseS3Event(input).objects).toHaveLength(1);
          else expect(() => parseS3Event(input)).toThrow(InvalidInputError);
        }
      }),
      { numRuns: 200 },
    );
  });

  test("Lambda SQS events of hostile messages: one result per message, never a throw", () => {
    const message = fc.oneof(
      fc.constantFrom(...sqsLambda.Records),
      mutationsOf(sqsLambda.Records[0]),
      hostileValue,
    );
    fc.assert(
      fc.property(fc.array(message, { minLength: 1, maxLength: 5 }), (records) => {
        const event = {
          Records: records.map((r) => ({ ...(r as object), eventSource: "aws:sqs" })),
        };
        expect(isSqsEvent(event)).toBe(true);
        const results = parseSqsRecords(event);
        expect(results).toHaveLength(records.length);
        for (const r of results) {
          if ("error" in r) expect(r.error).toBeInstanceOf(InvalidInputError);
          else for (const o of r.parsed.objects) expect(typeof o.eventName).toBe("string");
        }
      }),
      { numRuns: 300 },
    );
    fc.assert(fc.property(hostileValue, (v) => void isSqsEvent(v)));
  });

  test("decodeS3Key decodes what encodeS3Key made, and raises only InvalidInputError", () => {
    fc.assert(
      fc.property(fc.string({ unit: "grapheme" }), (key) => {
        expect(decodeS3Key(encodeS3Key(key))).toBe(key);
      }),
    );
    fc.assert(
      fc.property(hostileString, (raw) => {
        try {
          expect(typeof decodeS3Key(raw)).toBe("string");
        } catch (err) {
          expect(err).toBeInstanceOf(InvalidInputError);
        }
      }),
    );
  });
});
