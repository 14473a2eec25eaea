import { afterEach, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { LambdaClient } from "@aws-sdk/client-lambda";
import { SQSClient } from "@aws-sdk/client-sqs";
import fc from "fast-check";
import type { Notification } from "../../core/contract.ts";
import { ConfigError, FandaError, InvalidInputError } from "../../core/errors.ts";
import { createLogger } from "../../core/log.ts";
import { hostileValue, mutationsOf } from "../../core/testing/hostile.ts";
import { main } from "../../scripts/redrive.ts";
import { runCommand } from "../../scripts/run.ts";
import { createCategorizer } from "./category.ts";
import onFailure from "./fixtures/lambda-on-failure.json";
import eventAge from "./fixtures/lambda-on-failure-event-age.json";
import kafkaFailure from "./fixtures/lambda-on-failure-kafka.json";
import put from "./fixtures/s3-put.json";
import testEvent from "./fixtures/s3-test-event.json";
import sqsLambda from "./fixtures/sqs-lambda.json";
import { createHandler, type ProducerRuntime } from "./lambda.ts";
import {
  createKafkaTarget,
  createLambdaTarget,
  createMemoryQueue,
  createRedrive,
  createSqsQueue,
  type FailureQueue,
  InvalidRecordError,
  originalErrorOf,
  parseInvocationRecord,
  type RedriveOptions,
  type RedriveTarget,
  readFailedInvocation,
} from "./redrive.ts";
import { encodeS3Key, eventIdOf, parseS3Event } from "./s3-event.ts";

const REGION = "ap-northeast-2";
const QUEUE_PATH = "/123456789012/fanda-ingest-producer-failures";
const credentials = { accessKeyId: "AKIDREDRIVETEST", secretAccessKey: "redrive-test-secret" };
const silent = createLogger({ sink: () => {} });
const json = (v: unknown) => JSON.stringify(v);
const withPayload = (requestPayload: unknown) => json({ ...onFailure, requestPayload });

/** Lines a logger wrote, parsed. */
function capture() {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({ level: "debug", sink: (line) => lines.push(JSON.parse(line)) });
  return { lines, logger };
}

/** A target that records what it was sent and fails where `fail` says so. */
function fakeTarget(fail?: (requestId: string) => unknown) {
  const sent: { event: unknown; requestId: string }[] = [];
  const target: RedriveTarget & { sent: typeof sent; calls: number } = {
    name: "fake",
    sent,
    calls: 0,
    async send(event, { requestId }) {
      target.calls++;
      const error = fail?.(requestId);
      if (error !== undefined) throw error;
      sent.push({ event, requestId });
    },
  };
  return target;
}

const redrive = (options: Partial<RedriveOptions> & Pick<RedriveOptions, "queue" | "target">) =>
  createRedrive({ logger: silent, waitTimeSeconds: 0, ...options }).run();

describe("parseInvocationRecord", () => {
  test("reads the on-failure fixtures", () => {
    const r = parseInvocationRecord(json(onFailure));
    expect(r.requestContext).toEqual({
      requestId: "6f0c2b9e-4d1a-4c7e-9b52-3e8d1f7a0c64",
      functionArn:
        "arn:aws:lambda:ap-northeast-2:123456789012:function:fanda-ingest-producer-4c1d9e2:$LATEST",
      condition: "RetriesExhausted",
      approximateInvokeCount: 3,
    });
    expect(r.requestPayload).toEqual(onFailure.requestPayload);
    expect(originalErrorOf(r)).toBe(
      "Unhandled Sandbox.Timedout: RequestId: 6f0c2b9e-4d1a-4c7e-9b52-3e8d1f7a0c64 Error: Task timed out after 30.00 seconds",
    );
    const k = parseInvocationRecord(json(kafkaFailure));
    expect(originalErrorOf(k)).toBe(
      "Unhandled FandaError: kafka: publishing 2 message(s) to fanda-notifications: Connection timeout",
    );
    const age = parseInvocationRecord(json(eventAge));
    expect(age.requestContext.condition).toBe("EventAgeExceeded");
    expect(age.requestContext.approximateInvokeCount).toBe(0);
    expect(age.responseContext).toBeUndefined();
    expect(originalErrorOf(age)).toBeUndefined();
  });

  test("accepts an EventAgeExceeded record that carries the last attempt's response", () => {
    const r = parseInvocationRecord(
      json({
        ...eventAge,
        requestContext: { ...eventAge.requestContext, approximateInvokeCount: 2 },
        responseContext: {
          statusCode: 200,
          executedVersion: "$LATEST",
          functionError: "Unhandled",
        },
        responsePayload: { errorMessage: "boom" },
      }),
    );
    expect(originalErrorOf(r)).toBe("Unhandled: boom");
  });

  test.each([
    ["not JSON", "{nope", /body is not valid JSON/],
    ["a JSON array", "[]", /not a Lambda invocation record: \(root\)/],
    ["a bare S3 event", json(put), /requestContext/],
    [
      "a record without requestPayload",
      json({ ...onFailure, requestPayload: undefined }),
      /requestPayload: expected a JSON object/,
    ],
    [
      "a success record",
      json({ ...onFailure, requestContext: { ...onFailure.requestContext, condition: "Success" } }),
      /condition: Success: not a failure record/,
    ],
    ["another record version", json({ ...onFailure, version: "2.0" }), /version 1\.x/],
    [
      "a function that is not an ARN",
      json({ ...onFailure, requestContext: { ...onFailure.requestContext, functionArn: "f" } }),
      /functionArn: expected a Lambda function ARN/,
    ],
    [
      "a negative invoke count",
      json({
        ...onFailure,
        requestContext: { ...onFailure.requestContext, approximateInvokeCount: -1 },
      }),
      /approximateInvokeCount/,
    ],
    ["a timestamp that is not a time", json({ ...onFailure, timestamp: "yesterday" }), /timestamp/],
  ])("rejects %s", (_name, body, reason) => {
    expect(() => parseInvocationRecord(body)).toThrow(InvalidRecordError);
    expect(() => parseInvocationRecord(body)).toThrow(reason);
  });
});

describe("readFailedInvocation", () => {
  test("yields the objects and the eventIds the Lambda handler publishes for the same event", async () => {
    const published: Notification[] = [];
    const handler = createHandler(async () => ({
      publisher: { publish: async (ns) => void published.push(...ns) },
      categorize: createCategorizer(),
      notifyOnRemoved: false,
      logger: silent,
    }));
    for (const fixture of [onFailure, kafkaFailure, eventAge]) {
      published.length = 0;
      await handler(structuredClone(fixture.requestPayload));
      const failed = readFailedInvocation(json(fixture));
      expect(failed.eventIds).toEqual(published.map((n) => n.eventId));
      expect(failed.event.objects.map((o) => o.key)).toEqual(published.map((n) => n.objectKey));
    }
    expect(readFailedInvocation(json(kafkaFailure)).eventIds).toHaveLength(2);
  });

  test.each([
    [
      "a payload that is not an S3 event",
      withPayload({ hello: "world" }),
      /requestPayload: s3-event: parsing: event: no Records array/,
    ],
    [
      "an S3 record without a bucket",
      withPayload({
        Records: [{ ...put.Records[0], s3: { object: { key: "k", sequencer: "1" } } }],
      }),
      /requestPayload: .*Records\[0\].*s3\.bucket/,
    ],
    [
      "a key that is not valid percent-encoding",
      withPayload({
        Records: [
          {
            ...put.Records[0],
            s3: { ...put.Records[0]?.s3, object: { key: "%E0%A4%A", sequencer: "1" } },
          },
        ],
      }),
      /requestPayload: .*not valid percent-encoded UTF-8/,
    ],
    ["an SQS batch", withPayload(sqsLambda), /requestPayload is an SQS batch event/],
  ])("rejects %s", (_name, body, reason) => {
    expect(() => readFailedInvocation(body)).toThrow(InvalidRecordError);
    expect(() => readFailedInvocation(body)).toThrow(reason);
  });

  test("a test event has nothing to notify; removals only when the producer notifies them", () => {
    expect(readFailedInvocation(withPayload(testEvent)).event).toEqual({
      objects: [],
      skipped: [{ at: "event", reason: "s3:TestEvent" }],
    });
    const removed = withPayload({
      Records: [{ ...put.Records[0], eventName: "ObjectRemoved:Delete" }],
    });
    expect(readFailedInvocation(removed).eventIds).toEqual([]);
    expect(readFailedInvocation(removed, { notifyOnRemoved: true }).eventIds).toHaveLength(1);
  });
});

describe("record parser properties", () => {
  const onlyOwnErrors = (body: string) => {
    for (const parse of [parseInvocationRecord, readFailedInvocation]) {
      try {
        parse(body);
      } catch (err) {
        if (!(err instanceof InvalidRecordError)) throw err;
      }
    }
  };

  const isoTime = fc
    .date({ min: new Date("2020-01-01T00:00:00Z"), max: new Date("2035-12-31T00:00:00Z") })
    .filter((d) => !Number.isNaN(d.getTime()))
    .map((d) => d.toISOString());

  const s3Object = fc.record(
    {
      bucket: fc.stringMatching(/^[a-z0-9][a-z0-9.-]{1,20}[a-z0-9]$/),
      key: fc.string({ unit: "grapheme", minLength: 1, maxLength: 40 }),
      eventName: fc.constantFrom(
        "ObjectCreated:Put",
        "ObjectCreated:Post",
        "ObjectCreated:Copy",
        "ObjectCreated:CompleteMultipartUpload",
      ),
      eventTime: isoTime,
      sequencer: fc.stringMatching(/^[0-9A-F]{16,18}$/),
      size: fc.nat(),
      eTag: fc.stringMatching(/^[0-9a-f]{32}$/),
      versionId: fc.stringMatching(/^[A-Za-z0-9._]{32}$/),
    },
    { requiredKeys: ["bucket", "key", "eventName", "eventTime", "sequencer"] },
  );
  type S3Object = typeof s3Object extends fc.Arbitrary<infer T> ? T : never;

  const s3Record = (o: S3Object) => ({
    eventVersion: "2.1",
    eventSource: "aws:s3",
    awsRegion: REGION,
    eventTime: o.eventTime,
    eventName: o.eventName,
    s3: {
      s3SchemaVersion: "1.0",
      bucket: { name: o.bucket, arn: `arn:aws:s3:::${o.bucket}` },
      object: {
        key: encodeS3Key(o.key),
        sequencer: o.sequencer,
        ...(o.size === undefined ? {} : { size: o.size }),
        ...(o.eTag === undefined ? {} : { eTag: o.eTag }),
        ...(o.versionId === undefined ? {} : { versionId: o.versionId }),
      },
    },
  });

  const validRecord = fc
    .record(
      {
        version: fc.constantFrom("1.0", "1.1"),
        timestamp: isoTime,
        requestContext: fc.record({
          requestId: fc.uuid(),
          functionArn: fc.stringMatching(
            /^arn:aws:lambda:[a-z]{2}-[a-z]{4,9}-\d:\d{12}:function:[A-Za-z0-9_-]{1,64}:\$LATEST$/,
          ),
          condition: fc.constantFrom("RetriesExhausted", "EventAgeExceeded"),
          approximateInvokeCount: fc.nat({ max: 185 }),
        }),
        objects: fc.array(s3Object, { minLength: 1, maxLength: 4 }),
        responseContext: fc.record(
          {
            statusCode: fc.constant(200),
            executedVersion: fc.constant("$LATEST"),
            functionError: fc.constantFrom("Unhandled", "Handled"),
          },
          { requiredKeys: ["statusCode"] },
        ),
        responsePayload: fc.jsonValue({ maxDepth: 3 }),
      },
      { requiredKeys: ["version", "timestamp", "requestContext", "objects"] },
    )
    .map(({ objects, ...rest }) => ({
      objects,
      record: { ...rest, requestPayload: { Records: objects.map(s3Record) } },
    }));

  test("arbitrary strings throw nothing but InvalidRecordError", () => {
    fc.assert(fc.property(fc.string({ unit: "binary" }), onlyOwnErrors), { numRuns: 500 });
  });

  test("arbitrary JSON throws nothing but InvalidRecordError", () => {
    fc.assert(fc.property(fc.json({ stringUnit: "binary" }), onlyOwnErrors), { numRuns: 500 });
  });

  test("records with one field replaced or removed throw nothing but InvalidRecordError", () => {
    const paths: (string | number)[][] = [
      ["version"],
      ["timestamp"],
      ["requestContext"],
      ["requestContext", "condition"],
      ["requestContext", "approximateInvokeCount"],
      ["requestPayload"],
      ["requestPayload", "Records"],
      ["requestPayload", "Records", 0],
      ["requestPayload", "Records", 0, "eventSource"],
      ["requestPayload", "Records", 0, "eventTime"],
      ["requestPayload", "Records", 0, "s3"],
      ["requestPayload", "Records", 0, "s3", "object", "key"],
      ["requestPayload", "Records", 0, "s3", "object", "size"],
      ["responseContext"],
      ["responsePayload"],
    ];
    fc.assert(
      fc.property(
        validRecord,
        fc.constantFrom(...paths),
        fc.option(fc.jsonValue({ maxDepth: 3 }), { nil: undefined }),
        ({ record }, path, value) => {
          const mutated = structuredClone(record) as Record<string | number, unknown>;
          let at = mutated;
          for (const step of path.slice(0, -1)) at = at[step] as Record<string | number, unknown>;
          const last = path[path.length - 1] as string | number;
          if (value === undefined) delete at[last];
          else at[last] = value;
          onlyOwnErrors(json(mutated));
        },
      ),
      { numRuns: 500 },
    );
  });

  test("valid records round-trip, and yield their objects' eventIds", () => {
    fc.assert(
      fc.property(validRecord, ({ record, objects }) => {
        const body = json(record);
        expect(parseInvocationRecord(body)).toEqual(JSON.parse(body));
        const failed = readFailedInvocation(body);
        expect(failed.event.objects.map((o) => [o.bucket, o.key, o.sequencer])).toEqual(
          objects.map((o) => [o.bucket, o.key, o.sequencer]),
        );
        expect(failed.eventIds).toEqual(objects.map(eventIdOf));
        expect(failed.eventIds).toEqual(parseS3Event(record.requestPayload).objects.map(eventIdOf));
      }),
      { numRuns: 300 },
    );
  });
});

describe("record parser, hostile records (property)", () => {
  test("an on-failure record changed in hostile ways is read or raises InvalidRecordError", () => {
    fc.assert(
      fc.property(
        fc.oneof(mutationsOf(onFailure), mutationsOf(kafkaFailure), hostileValue),
        (record) => {
          try {
            const failed = readFailedInvocation(JSON.stringify(record) ?? "");
            for (const id of failed.eventIds) expect(id).toMatch(/^[0-9a-f]{32}$/);
          } catch (err) {
            expect(err).toBeInstanceOf(InvalidRecordError);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe("createRedrive", () => {
  test.each([
    [{ max: 0 }, /max: expected an integer >= 1/],
    [{ max: 1.5 }, /max/],
    [{ batchSize: 11 }, /batchSize: expected an integer 1-10/],
    [{ visibilityTimeoutSeconds: 0 }, /visibilityTimeoutSeconds/],
    [{ waitTimeSeconds: 21 }, /waitTimeSeconds: expected an integer 0-20/],
    [{ emptyReceives: 0 }, /emptyReceives/],
    [{ target: {} as RedriveTarget }, /target: expected a RedriveTarget/],
    [{ queue: {} as FailureQueue }, /queue: expected a FailureQueue/],
  ])("rejects %p at construction", (bad, message) => {
    const build = () =>
      createRedrive({ queue: createMemoryQueue([]), target: fakeTarget(), logger: silent, ...bad });
    expect(build).toThrow(ConfigError);
    expect(build).toThrow(message);
  });

  test("deletes only what was re-sent; every other message is reported and stays in the queue", async () => {
    const queue = createMemoryQueue([
      { messageId: "timeout", body: json(onFailure) },
      { messageId: "garbage", body: "{nope" },
      { messageId: "kafka", body: json(kafkaFailure) },
      { messageId: "not-s3", body: withPayload({ hello: "world" }) },
      { messageId: "fails-again", body: json(eventAge) },
      { messageId: "test-event", body: withPayload(testEvent) },
    ]);
    const target = fakeTarget((requestId) =>
      requestId === eventAge.requestContext.requestId
        ? new FandaError("lambda: invoking f", "function error (Unhandled) boom", {
            retriable: true,
          })
        : undefined,
    );
    const { lines, logger } = capture();
    const report = await redrive({ queue, target, logger });

    expect(report).toMatchObject({
      dryRun: false,
      target: "fake",
      received: 6,
      redriven: 2,
      failed: 3,
      skipped: 1,
      stopped: "empty",
    });
    expect(report.eventIds).toEqual([
      ...readFailedInvocation(json(onFailure)).eventIds,
      ...readFailedInvocation(json(kafkaFailure)).eventIds,
    ]);
    expect(report.failures).toEqual([
      { messageId: "garbage", reason: "redrive: reading message: body is not valid JSON" },
      {
        messageId: "not-s3",
        reason: expect.stringMatching(/^redrive: reading message: requestPayload: .*no Records/),
      },
      {
        messageId: "fails-again",
        requestId: eventAge.requestContext.requestId,
        reason: "lambda: invoking f: function error (Unhandled) boom",
      },
    ]);
    expect(report.skips).toEqual([
      {
        messageId: "test-event",
        requestId: onFailure.requestContext.requestId,
        reason: "nothing to notify: event: s3:TestEvent",
      },
    ]);
    expect(target.sent.map((s) => s.requestId)).toEqual([
      onFailure.requestContext.requestId,
      kafkaFailure.requestContext.requestId,
    ]);
    expect(target.sent[0]?.event).toEqual(onFailure.requestPayload);
    expect(queue.deleted).toEqual(["timeout", "kafka"]);
    expect(queue.remaining()).toEqual(["garbage", "not-s3", "fails-again", "test-event"]);
    expect(queue.released.toSorted()).toEqual(queue.remaining().toSorted());

    const perMessage = lines.filter((l) => l.messageId !== undefined);
    expect(perMessage.map((l) => [l.level, l.msg, l.messageId])).toEqual([
      ["info", "redriven", "timeout"],
      ["warn", "not redriven; left in the queue", "garbage"],
      ["info", "redriven", "kafka"],
      ["warn", "not redriven; left in the queue", "not-s3"],
      ["warn", "not redriven; left in the queue", "fails-again"],
      ["info", "skipped; left in the queue", "test-event"],
    ]);
    expect(perMessage[0]).toMatchObject({
      ns: "fanda.redrive",
      requestId: onFailure.requestContext.requestId,
      condition: "RetriesExhausted",
      approximateInvokeCount: 3,
      keys: ["fanda-uploads-dev/reports/positive/Q3 실적 report+(final).pdf"],
      target: "fake",
    });
    expect(lines.at(-1)).toMatchObject({
      msg: "redrive finished",
      received: 6,
      redriven: 2,
      failed: 3,
      skipped: 1,
    });
  });

  test("a target that throws anything, even a non-error, fails only its message", async () => {
    const queue = createMemoryQueue([json(onFailure), json(kafkaFailure)]);
    const target = fakeTarget((id) =>
      id === onFailure.requestContext.requestId ? "weird" : undefined,
    );
    const report = await redrive({ queue, target });
    expect(report).toMatchObject({ redriven: 1, failed: 1 });
    expect(report.failures[0]?.reason).toBe("redrive: sending to fake: weird");
    expect(queue.deleted).toEqual(["m-2"]);
  });

  test("a dry run reports what would be redriven and sends, deletes and keeps nothing", async () => {
    const queue = createMemoryQueue([json(onFailure), "{nope", json(kafkaFailure)]);
    const target = fakeTarget();
    const { lines, logger } = capture();
    const report = await redrive({ queue, target, logger, dryRun: true });
    expect(report).toMatchObject({ dryRun: true, received: 3, redriven: 2, failed: 1 });
    expect(report.eventIds).toHaveLength(3);
    expect(target.calls).toBe(0);
    expect(queue.deleted).toEqual([]);
    expect(queue.released.toSorted()).toEqual(["m-1", "m-2", "m-3"]);
    expect(lines.filter((l) => l.msg === "would redrive").map((l) => l.messageId)).toEqual([
      "m-1",
      "m-3",
    ]);
    expect(lines.at(-1)?.msg).toBe("redrive dry run finished");
  });

  test("stops after max messages, asking for no more than it will handle", async () => {
    const queue = createMemoryQueue(Array.from({ length: 25 }, () => json(onFailure)));
    const report = await redrive({ queue, target: fakeTarget(), max: 12 });
    expect(report).toMatchObject({ received: 12, redriven: 12, stopped: "max" });
    expect(queue.receives.map((r) => r.max)).toEqual([10, 2]);
    expect(queue.remaining()).toHaveLength(13);
  });

  test("stops when the queue stays empty for emptyReceives receives, with the settings given", async () => {
    const queue = createMemoryQueue([]);
    const report = await createRedrive({
      queue,
      target: fakeTarget(),
      logger: silent,
      emptyReceives: 2,
      waitTimeSeconds: 5,
      visibilityTimeoutSeconds: 60,
      batchSize: 4,
    }).run();
    expect(report).toMatchObject({ received: 0, redriven: 0, stopped: "empty" });
    expect(queue.receives).toEqual([
      { max: 4, visibilityTimeoutSeconds: 60, waitTimeSeconds: 5 },
      { max: 4, visibilityTimeoutSeconds: 60, waitTimeSeconds: 5 },
    ]);
  });

  test("a message seen again after its visibility lapsed is not handled twice", async () => {
    const inner = createMemoryQueue([json(eventAge)]);
    const queue: FailureQueue = {
      receive: (o) => {
        inner.expire();
        return inner.receive(o);
      },
      delete: (h) => inner.delete(h),
      release: (h) => inner.release(h),
    };
    const target = fakeTarget(() => new FandaError("t", "down", { retriable: true }));
    const report = await redrive({ queue, target });
    expect(report).toMatchObject({ received: 1, failed: 1, stopped: "empty" });
    expect(target.calls).toBe(1);
    expect(inner.receives).toHaveLength(4);
    // Released with the newest receipt handle (an older one is no longer valid).
    expect(inner.released).toEqual(["m-1"]);
  });

  test("a message re-sent but not deleted is a failure saying so, and is released", async () => {
    const inner = createMemoryQueue([json(onFailure)]);
    const queue: FailureQueue = {
      receive: (o) => inner.receive(o),
      delete: async () => {
        throw new Error("AccessDenied");
      },
      release: (h) => inner.release(h),
    };
    const target = fakeTarget();
    const report = await redrive({ queue, target });
    expect(target.sent).toHaveLength(1);
    expect(report).toMatchObject({ redriven: 0, failed: 1 });
    expect(report.failures[0]?.reason).toMatch(
      /^re-sent, but not deleted \(redrive: deleting the message: AccessDenied\); a later run re-sends it/,
    );
    expect(inner.released).toEqual(["m-1"]);
  });

  test("a queue that cannot be read stops the run, releasing what it held", async () => {
    const inner = createMemoryQueue([json(eventAge), json(onFailure)]);
    let receives = 0;
    const queue: FailureQueue = {
      receive: async (o) => {
        if (++receives > 1) throw new Error("QueueDoesNotExist");
        return inner.receive({ ...o, max: 1 });
      },
      delete: (h) => inner.delete(h),
      release: (h) => inner.release(h),
    };
    const target = fakeTarget(() => new FandaError("t", "down"));
    const run = redrive({ queue, target });
    await expect(run).rejects.toThrow(FandaError);
    await expect(run).rejects.toThrow("redrive: receiving from the queue: QueueDoesNotExist");
    expect(inner.released).toEqual(["m-1"]);
    expect(inner.remaining()).toEqual(["m-1", "m-2"]);
  });

  test("an abort stops after the message in hand and releases the rest of the batch", async () => {
    const stop = new AbortController();
    const queue = createMemoryQueue([json(onFailure), json(kafkaFailure), json(eventAge)]);
    const target = fakeTarget(() => {
      stop.abort();
      return undefined;
    });
    const report = await redrive({ queue, target, signal: stop.signal });
    expect(report).toMatchObject({ received: 1, redriven: 1, stopped: "aborted" });
    expect(queue.deleted).toEqual(["m-1"]);
    expect(queue.released.toSorted()).toEqual(["m-2", "m-3"]);
  });
});

describe("kafka target", () => {
  test("publishes what the Lambda path publishes, eventIds included, so the processor drops duplicates", async () => {
    const published: Notification[] = [];
    const traceIds: (string | undefined)[] = [];
    const runtime: ProducerRuntime = {
      publisher: {
        publish: async (ns, o) => {
          published.push(...ns);
          traceIds.push(o?.traceId);
        },
      },
      categorize: createCategorizer(),
      notifyOnRemoved: false,
      logger: silent,
    };
    const queue = createMemoryQueue([json(onFailure), json(kafkaFailure)]);
    const report = await redrive({
      queue,
      target: createKafkaTarget({ runtime, topic: "fanda-notifications" }),
    });
    expect(report).toMatchObject({ redriven: 2, failed: 0, target: "kafka fanda-notifications" });
    expect(queue.deleted).toEqual(["m-1", "m-2"]);
    expect(traceIds).toEqual([
      onFailure.requestContext.requestId,
      kafkaFailure.requestContext.requestId,
    ]);

    // The normal path, for the same events (what the failed invocation may have published).
    const original: Notification[] = [];
    const lambda = createHandler(async () => ({
      ...runtime,
      publisher: { publish: async (ns) => void original.push(...ns) },
    }));
    await lambda(structuredClone(onFailure.requestPayload));
    await lambda(structuredClone(kafkaFailure.requestPayload));
    expect(published).toEqual(original);
    expect(report.eventIds).toEqual(original.map((n) => n.eventId));
    // Same eventIds as the originals: the processor's idempotency store (keyed by eventId and
    // channel, tested in processor/src/idempotency*.test.ts) skips what was already delivered.
  });

  test("a Kafka failure fails the message and leaves it in the queue", async () => {
    const runtime: ProducerRuntime = {
      publisher: {
        publish: async () => {
          throw new FandaError("kafka: publishing 1 message(s) to t", "Connection timeout", {
            retriable: true,
          });
        },
      },
      categorize: createCategorizer(),
      notifyOnRemoved: false,
      logger: silent,
    };
    const queue = createMemoryQueue([json(onFailure)]);
    const report = await redrive({ queue, target: createKafkaTarget({ runtime, topic: "t" }) });
    expect(report.failures[0]?.reason).toBe(
      "kafka: publishing 1 message(s) to t: Connection timeout",
    );
    expect(queue.remaining()).toEqual(["m-1"]);
  });
});

/** What a request to the fake AWS endpoint carried. */
interface SeenRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string;
}

/** An invoke answer of the fake Lambda. */
interface InvokeAnswer {
  status?: number;
  headers?: Record<string, string>;
  body: unknown;
}

/**
 * A local HTTP server that answers like SQS's JSON protocol (backed by an in-memory queue)
 * and like Lambda's Invoke.
 */
function startFakeAws(
  messages: Parameters<typeof createMemoryQueue>[0],
  invoke: (functionName: string, payload: unknown) => InvokeAnswer = () => ({
    body: { published: 1, skipped: 0 },
  }),
) {
  const queue = createMemoryQueue(messages);
  const requests: SeenRequest[] = [];
  const sqsJson = (body: unknown, status = 200, headers: Record<string, string> = {}) =>
    new Response(JSON.stringify(body), {
      status,
      headers: { "content-type": "application/x-amz-json-1.0", ...headers },
    });
  const sqsError = (code: string, message: string) =>
    sqsJson({ __type: `com.amazonaws.sqs#${code}`, message }, 400, {
      "x-amzn-query-error": `${code};Sender`,
    });
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const url = new URL(req.url);
      const body = await req.text();
      requests.push({
        method: req.method,
        path: url.pathname,
        headers: Object.fromEntries(req.headers),
        body,
      });
      const target = req.headers.get("x-amz-target");
      if (req.method === "POST" && target?.startsWith("AmazonSQS.")) {
        const input = JSON.parse(body) as Record<string, unknown>;
        if (input.QueueUrl !== `${fake.url}${QUEUE_PATH}`) {
          return sqsError("QueueDoesNotExist", "The specified queue does not exist.");
        }
        try {
          switch (target) {
            case "AmazonSQS.ReceiveMessage": {
              const got = await queue.receive({
                max: Number(input.MaxNumberOfMessages ?? 1),
                visibilityTimeoutSeconds: Number(input.VisibilityTimeout ?? 30),
                waitTimeSeconds: Number(input.WaitTimeSeconds ?? 0),
              });
              return sqsJson(
                got.length === 0
                  ? {}
                  : {
                      Messages: got.map((m) => ({
                        MessageId: m.messageId,
                        ReceiptHandle: m.receiptHandle,
                        MD5OfBody: createHash("md5").update(m.body).digest("hex"),
                        Body: m.body,
                      })),
                    },
              );
            }
            case "AmazonSQS.DeleteMessage":
              await queue.delete(String(input.ReceiptHandle));
              return sqsJson({});
            case "AmazonSQS.ChangeMessageVisibility":
              if (input.VisibilityTimeout !== 0) return sqsError("InvalidParameterValue", "0 only");
              await queue.release(String(input.ReceiptHandle));
              return sqsJson({});
            default:
              return sqsError("InvalidAction", `${target} is not faked`);
          }
        } catch (err) {
          return sqsError("ReceiptHandleIsInvalid", (err as Error).message);
        }
      }
      const invocation = url.pathname.match(/^\/2015-03-31\/functions\/([^/]+)\/invocations$/);
      if (req.method === "POST" && invocation?.[1]) {
        const answer = invoke(decodeURIComponent(invocation[1]), JSON.parse(body));
        return new Response(JSON.stringify(answer.body), {
          status: answer.status ?? 200,
          headers: {
            "content-type": "application/json",
            "x-amz-executed-version": "$LATEST",
            ...answer.headers,
          },
        });
      }
      return new Response("not faked", { status: 404 });
    },
  });
  const fake = {
    url: `http://127.0.0.1:${server.port}`,
    queueUrl: `http://127.0.0.1:${server.port}${QUEUE_PATH}`,
    queue,
    requests,
    sqs: (target: string) =>
      requests
        .filter((r) => r.headers["x-amz-target"] === `AmazonSQS.${target}`)
        .map((r) => JSON.parse(r.body) as Record<string, unknown>),
    invocations: () => requests.filter((r) => r.path.endsWith("/invocations")),
    stop: () => server.stop(true),
  };
  return fake;
}

const stops: (() => unknown)[] = [];
afterEach(async () => {
  for (const stop of stops.splice(0)) await stop();
});

function fakeAws(...args: Parameters<typeof startFakeAws>) {
  const fake = startFakeAws(...args);
  stops.push(fake.stop);
  const sqs = new SQSClient({ region: REGION, endpoint: fake.url, credentials, maxAttempts: 1 });
  const lambda = new LambdaClient({
    region: REGION,
    endpoint: fake.url,
    credentials,
    maxAttempts: 1,
  });
  stops.push(
    () => sqs.destroy(),
    () => lambda.destroy(),
  );
  return { fake, sqs, lambda };
}

const FUNCTION = "fanda-ingest-producer-4c1d9e2";
const lambda0 = { send: async () => ({ $metadata: {} }) };

describe("SQS adapter", () => {
  test("receives with the queue URL and settings, deletes and releases by receipt handle", async () => {
    const { fake, sqs } = fakeAws([{ messageId: "a", body: json(onFailure) }, "{nope"]);
    const queue = createSqsQueue({ client: sqs, queueUrl: fake.queueUrl });
    const got = await queue.receive({ max: 10, visibilityTimeoutSeconds: 300, waitTimeSeconds: 2 });
    expect(got.map((m) => [m.messageId, m.body])).toEqual([
      ["a", json(onFailure)],
      ["m-2", "{nope"],
    ]);
    await queue.delete(got[0]?.receiptHandle ?? "");
    await queue.release(got[1]?.receiptHandle ?? "");
    expect(fake.queue.deleted).toEqual(["a"]);
    expect(fake.queue.released).toEqual(["m-2"]);

    const receive = fake.requests[0];
    expect(receive?.headers["content-type"]).toBe("application/x-amz-json-1.0");
    expect(receive?.headers.authorization).toContain(`Credential=${credentials.accessKeyId}/`);
    expect(fake.sqs("ReceiveMessage")).toEqual([
      {
        QueueUrl: fake.queueUrl,
        MaxNumberOfMessages: 10,
        VisibilityTimeout: 300,
        WaitTimeSeconds: 2,
      },
    ]);
    expect(fake.sqs("DeleteMessage")).toEqual([
      { QueueUrl: fake.queueUrl, ReceiptHandle: got[0]?.receiptHandle },
    ]);
    expect(fake.sqs("ChangeMessageVisibility")).toEqual([
      { QueueUrl: fake.queueUrl, ReceiptHandle: got[1]?.receiptHandle, VisibilityTimeout: 0 },
    ]);
  });

  test("an empty receive is no messages; SQS errors reject with SQS's error", async () => {
    const { fake, sqs } = fakeAws([]);
    const queue = createSqsQueue({ client: sqs, queueUrl: fake.queueUrl });
    expect(
      await queue.receive({ max: 1, visibilityTimeoutSeconds: 1, waitTimeSeconds: 0 }),
    ).toEqual([]);
    await expect(queue.delete("stale")).rejects.toThrow(/not valid/);
    const other = createSqsQueue({ client: sqs, queueUrl: `${fake.url}/123456789012/other` });
    await expect(
      other.receive({ max: 1, visibilityTimeoutSeconds: 1, waitTimeSeconds: 0 }),
    ).rejects.toThrow(/queue does not exist/);
  });

  test.each(["", "sqs", "ftp://x/1/q", "https://sqs.ap-northeast-2.amazonaws.com/"])(
    "rejects the queue URL %p",
    (queueUrl) => {
      expect(() => createSqsQueue({ client: { send: async () => ({}) }, queueUrl })).toThrow(
        /queueUrl: expected an SQS queue URL/,
      );
    },
  );
});

describe("Lambda adapter", () => {
  test("invokes the function synchronously with the original payload", async () => {
    const { fake, lambda } = fakeAws([]);
    const target = createLambdaTarget({ client: lambda, functionName: FUNCTION });
    expect(target.name).toBe(`lambda ${FUNCTION}`);
    await target.send(onFailure.requestPayload, { requestId: "r" });
    const [call] = fake.invocations();
    expect(call?.method).toBe("POST");
    expect(call?.path).toBe(`/2015-03-31/functions/${FUNCTION}/invocations`);
    expect(call?.headers["x-amz-invocation-type"]).toBe("RequestResponse");
    expect(JSON.parse(call?.body ?? "")).toEqual(onFailure.requestPayload);
  });

  test("a function error fails with the function's error; bad input is not retriable", async () => {
    const { lambda } = fakeAws([], (_fn, payload) =>
      JSON.stringify(payload).includes("incident")
        ? {
            headers: { "x-amz-function-error": "Unhandled" },
            body: kafkaFailure.responsePayload,
          }
        : {
            headers: { "x-amz-function-error": "Unhandled" },
            body: { errorType: "InvalidInputError", errorMessage: "s3-event: parsing: nope" },
          },
    );
    const target = createLambdaTarget({ client: lambda, functionName: FUNCTION });
    const kafkaDown = await target
      .send(kafkaFailure.requestPayload, { requestId: "r" })
      .catch((e) => e);
    expect(kafkaDown).toBeInstanceOf(FandaError);
    expect(kafkaDown.message).toBe(
      `lambda: invoking ${FUNCTION}: function error (Unhandled) FandaError: kafka: publishing 2 message(s) to fanda-notifications: Connection timeout`,
    );
    expect(kafkaDown.retriable).toBe(true);
    const bad = await target.send(onFailure.requestPayload, { requestId: "r" }).catch((e) => e);
    expect(bad.message).toMatch(/function error \(Unhandled\) InvalidInputError: s3-event/);
    expect(bad.retriable).toBe(false);
  });

  test("an API error (throttled by the reserved concurrency) fails the send", async () => {
    const { lambda } = fakeAws([], () => ({
      status: 429,
      headers: { "x-amzn-errortype": "TooManyRequestsException" },
      body: {
        Type: "User",
        message: "Rate Exceeded.",
        Reason: "ReservedFunctionConcurrentInvocationLimitExceeded",
      },
    }));
    const target = createLambdaTarget({ client: lambda, functionName: FUNCTION });
    await expect(target.send(onFailure.requestPayload, { requestId: "r" })).rejects.toThrow(
      `lambda: invoking ${FUNCTION}: Rate Exceeded.`,
    );
  });

  test.each(["", "has space", "a".repeat(171), "arn:aws:sqs:ap-northeast-2:123456789012:q"])(
    "rejects the function name %p",
    (functionName) => {
      expect(() => createLambdaTarget({ client: lambda0, functionName })).toThrow(ConfigError);
    },
  );
  test("accepts names, qualified names and ARNs", () => {
    for (const functionName of [
      FUNCTION,
      `${FUNCTION}:live`,
      `arn:aws:lambda:ap-northeast-2:123456789012:function:${FUNCTION}`,
    ]) {
      expect(createLambdaTarget({ client: lambda0, functionName }).name).toBe(
        `lambda ${functionName}`,
      );
    }
  });
});

describe("redrive over SQS and Lambda", () => {
  test("deletes exactly the messages whose invoke succeeded", async () => {
    const { fake, sqs, lambda } = fakeAws(
      [
        { messageId: "ok", body: json(onFailure) },
        { messageId: "garbage", body: "{}" },
        { messageId: "still-failing", body: json(kafkaFailure) },
      ],
      (_fn, payload) =>
        JSON.stringify(payload).includes("incident")
          ? { headers: { "x-amz-function-error": "Unhandled" }, body: kafkaFailure.responsePayload }
          : { body: { published: 1, skipped: 0 } },
    );
    const report = await redrive({
      queue: createSqsQueue({ client: sqs, queueUrl: fake.queueUrl }),
      target: createLambdaTarget({ client: lambda, functionName: FUNCTION }),
    });
    expect(report).toMatchObject({ received: 3, redriven: 1, failed: 2, stopped: "empty" });
    expect(fake.invocations()).toHaveLength(2);
    expect(fake.queue.deleted).toEqual(["ok"]);
    expect(fake.queue.remaining()).toEqual(["garbage", "still-failing"]);
    expect(fake.sqs("ChangeMessageVisibility")).toHaveLength(2);
  });
});

describe("scripts/redrive.ts", () => {
  const queueUrl = `https://sqs.${REGION}.amazonaws.com${QUEUE_PATH}`;
  const env = { AWS_REGION: REGION };

  async function cli(argv: string[], environment: Record<string, string> = env) {
    const errors: string[] = [];
    const out: string[] = [];
    const code = await main(argv, {
      env: environment,
      queue: createMemoryQueue([json(onFailure)]),
      logSink: () => {},
      stderr: (l) => errors.push(l),
      stdout: (l) => out.push(l),
    });
    return { code, errors: errors.join("\n"), out: out.join("\n") };
  }

  test.each([
    [[], /^--queue-url: required/],
    [["--queue-url", "not a url", "--function", "f"], /^--queue-url: expected an SQS queue URL/],
    [["--queue-url", queueUrl], /^--function: required with --to lambda/],
    [["--queue-url", queueUrl, "--to", "s3"], /^--to: expected lambda or kafka, got s3/],
    [["--queue-url", queueUrl, "--to", "kafka", "--function", "f"], /^--function: only with/],
    [["--queue-url", queueUrl, "--function", "f", "--max", "0"], /^--max: expected an integer/],
    [["--queue-url", queueUrl, "--function", "f", "--max", "ten"], /^--max: expected/],
    [
      ["--queue-url", queueUrl, "--function", "f", "--visibility-timeout", "99999"],
      /^--visibility-timeout: expected an integer 1-43200/,
    ],
    [["--queue-url", queueUrl, "--function", "f", "--nope"], /--nope/],
    [["--queue-url", queueUrl, "--function", "f", "extra"], /extra/],
  ])("exits 2 for %p, naming the option", async (argv, message) => {
    const { code, errors } = await cli(argv);
    expect(code).toBe(2);
    expect(errors).toMatch(message);
  });

  test.each([
    [{}, /AWS_REGION: is required/],
    [{ AWS_REGION: "Seoul" }, /AWS_REGION: expected an AWS region/],
    [{ AWS_REGION: REGION, LOG_LEVEL: "loud" }, /LOG_LEVEL/],
  ])("exits 2 for the environment %p, naming the variable", async (environment, message) => {
    const { code, errors } = await cli(["--queue-url", queueUrl, "--function", "f"], environment);
    expect(code).toBe(2);
    expect(errors).toMatch(message);
  });

  test("--to kafka checks the producer's Kafka environment", async () => {
    const { code, errors } = await cli(["--queue-url", queueUrl, "--to", "kafka"], {
      ...env,
      KAFKA_AUTH: "scram",
    });
    expect(code).toBe(2);
    expect(errors).toMatch(/KAFKA_SASL_USERNAME: is required/);
  });

  test("a dry run with the Lambda target invokes nothing and exits 0", async () => {
    const { code, out } = await cli(["--queue-url", queueUrl, "--function", "f", "--dry-run"]);
    expect(code).toBe(0);
    expect(out).toBe(
      "would redrive 1 of 1 message(s) to lambda f: 0 failed, 0 skipped (left in the queue); stopped: empty",
    );
  });

  test("runs end to end against SQS and Lambda endpoints, exiting 1 when a message failed", async () => {
    const fake = startFakeAws(
      [
        { messageId: "ok", body: json(onFailure) },
        { messageId: "garbage", body: "[]" },
      ],
      () => ({ body: { published: 1, skipped: 0 } }),
    );
    stops.push(fake.stop);
    const { stdout, stderr, code } = await runCommand(
      [
        process.execPath,
        "scripts/redrive.ts",
        "--queue-url",
        fake.queueUrl,
        "--function",
        FUNCTION,
        "--max",
        "5",
      ],
      {
        cwd: join(import.meta.dir, "..", ".."),
        env: {
          PATH: process.env.PATH ?? "",
          HOME: "/nonexistent",
          AWS_REGION: REGION,
          AWS_ACCESS_KEY_ID: credentials.accessKeyId,
          AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
          AWS_ENDPOINT_URL_SQS: fake.url,
          AWS_ENDPOINT_URL_LAMBDA: fake.url,
          AWS_EC2_METADATA_DISABLED: "true",
          AWS_MAX_ATTEMPTS: "1",
        },
      },
    );
    expect({ code, stderr: code === 1 ? "" : stderr }).toEqual({ code: 1, stderr: "" });
    const logs = [...stdout.split("\n"), ...stderr.split("\n")]
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(logs.find((l) => l.messageId === "ok")).toMatchObject({
      msg: "redriven",
      eventIds: readFailedInvocation(json(onFailure)).eventIds,
    });
    expect(logs.find((l) => l.messageId === "garbage")).toMatchObject({
      level: "warn",
      reason: expect.stringMatching(/not a Lambda invocation record/),
    });
    expect(stdout).toContain(
      `redriven 1 of 2 message(s) to lambda ${FUNCTION}: 1 failed, 0 skipped (left in the queue); stopped: empty`,
    );
    expect(fake.queue.deleted).toEqual(["ok"]);
    expect(fake.queue.remaining()).toEqual(["garbage"]);
    expect(JSON.parse(fake.invocations()[0]?.body ?? "")).toEqual(onFailure.requestPayload);
  }, 30_000);
});

test("InvalidRecordError is a final InvalidInputError", () => {
  const e = new InvalidRecordError("x");
  expect(e).toBeInstanceOf(InvalidInputError);
  expect(e.retriable).toBe(false);
  expect(e.name).toBe("InvalidRecordError");
});
