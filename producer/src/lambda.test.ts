import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { encodeNotification, MAX_TRACE_ID_BYTES, type Notification } from "../../core/contract.ts";
import { FandaError, InvalidInputError } from "../../core/errors.ts";
import { createLogger } from "../../core/log.ts";
import { hostileValue, mutationsOf } from "../../core/testing/hostile.ts";
import { createCategorizer } from "./category.ts";
import ebCreated from "./fixtures/eventbridge-created.json";
import put from "./fixtures/s3-put.json";
import sqsLambda from "./fixtures/sqs-lambda.json";
import { createHandler, type ProducerRuntime, type SqsBatchResponse } from "./lambda.ts";

function setup(fail?: Error) {
  const batches: { notifications: readonly Notification[]; traceId?: string }[] = [];
  const runtime: ProducerRuntime = {
    publisher: {
      publish: async (notifications, options) => {
        if (fail && notifications.length > 0) throw fail;
        // As the real publisher does: one invalid notification fails the call.
        for (const n of notifications) encodeNotification(n);
        batches.push({ notifications, ...(options?.traceId ? { traceId: options.traceId } : {}) });
      },
    },
    categorize: createCategorizer(),
    notifyOnRemoved: false,
    logger: createLogger({ sink: () => {} }),
  };
  return { handler: createHandler(async () => runtime), batches };
}

describe("lambda handler, S3 trigger", () => {
  test("publishes the event's objects as one batch, traced by the request id", async () => {
    const { handler, batches } = setup();
    expect(await handler(put, { awsRequestId: "req-1" })).toEqual({ published: 1, skipped: 0 });
    expect(batches).toHaveLength(1);
    expect(batches[0]?.traceId).toBe("req-1");
    expect(batches[0]?.notifications[0]?.category).toBe("positive");
  });

  test("traces by the request id when the X-Ray header is longer than a message header may be", async () => {
    const { handler, batches } = setup();
    const before = process.env._X_AMZN_TRACE_ID;
    process.env._X_AMZN_TRACE_ID = `Root=1-5759e988;Lineage=${"a".repeat(MAX_TRACE_ID_BYTES)}`;
    try {
      await handler(put, { awsRequestId: "req-2" });
    } finally {
      if (before === undefined) delete process.env._X_AMZN_TRACE_ID;
      else process.env._X_AMZN_TRACE_ID = before;
    }
    expect(batches[0]?.traceId).toBe("req-2");
  });

  test("throws on bad input, so Lambda retries and then uses the on-failure destination", async () => {
    const { handler, batches } = setup();
    await expect(handler({ Records: [{ eventSource: "aws:s3" }] })).rejects.toThrow(
      InvalidInputError,
    );
    expect(batches).toHaveLength(0);
  });

  test("throws when Kafka does not take the batch", async () => {
    const { handler } = setup(new FandaError("kafka", "down", { retriable: true }));
    await expect(handler(put)).rejects.toThrow("kafka: down");
  });

  test("fails the invocation when the runtime cannot be built (e.g. Kafka unreachable)", async () => {
    const handler = createHandler(async () => {
      throw new FandaError("kafka: connecting producer", "refused", { retriable: true });
    });
    await expect(handler(put)).rejects.toThrow("connecting producer");
  });
});

describe("lambda handler, SQS trigger", () => {
  test("publishes every message's objects and reports no failures", async () => {
    const { handler, batches } = setup();
    expect(await handler(sqsLambda)).toEqual({ batchItemFailures: [] });
    expect(batches.flatMap((b) => b.notifications)).toHaveLength(3);
  });

  test("reports only the message that is not an S3 event", async () => {
    const { handler, batches } = setup();
    const [first, second] = sqsLambda.Records;
    const event = { Records: [first, { ...second, messageId: "bad-1", body: "{nope" }] };
    expect(await handler(event)).toEqual({ batchItemFailures: [{ itemIdentifier: "bad-1" }] });
    expect(batches.flatMap((b) => b.notifications)).toHaveLength(1);
  });

  test("publishes an EventBridge body whose reason is a built-in property name", async () => {
    const { handler, batches } = setup();
    const [first] = sqsLambda.Records;
    const body = JSON.stringify({
      ...ebCreated,
      detail: { ...ebCreated.detail, reason: "toString" },
    });
    const event = { Records: [first, { ...first, messageId: "eb-1", body }] };
    expect(await handler(event)).toEqual({ batchItemFailures: [] });
    expect(batches.flatMap((b) => b.notifications.map((n) => n.eventName))).toEqual([
      "ObjectCreated:Put",
      "ObjectCreated:toString",
    ]);
  });

  test("reports only the messages the contract or the broker would refuse, publishing the rest", async () => {
    const { handler, batches } = setup();
    const [first] = sqsLambda.Records;
    const body = JSON.parse(first?.body ?? "") as { Records: Record<string, unknown>[] };
    const r = body.Records[0] as { s3: { bucket: object; object: object } };
    const variant = (messageId: string, bucket: object, object: object) => ({
      ...first,
      messageId,
      body: JSON.stringify({
        Records: [
          {
            ...r,
            s3: {
              ...r.s3,
              bucket: { ...r.s3.bucket, ...bucket },
              object: { ...r.s3.object, ...object },
            },
          },
        ],
      }),
    });
    const event = {
      Records: [
        variant("short-bucket", { name: "ab" }, {}),
        first,
        variant("long-key", {}, { key: "k".repeat(1025) }),
        variant("huge", {}, { eTag: "e".repeat(1024 * 1024) }),
      ],
    };
    expect(await handler(event)).toEqual({
      batchItemFailures: [
        { itemIdentifier: "short-bucket" },
        { itemIdentifier: "long-key" },
        { itemIdentifier: "huge" },
      ],
    });
    expect(batches.flatMap((b) => b.notifications.map((n) => n.bucketName))).toEqual([
      "fanda-uploads-dev",
    ]);
  });

  test("reports the published messages, not the skipped ones, when Kafka fails", async () => {
    const { handler } = setup(new FandaError("kafka", "down", { retriable: true }));
    expect(await handler(sqsLambda)).toEqual({
      batchItemFailures: [
        { itemIdentifier: "059f36b4-87a3-44ab-83d2-661975830a7d" },
        { itemIdentifier: "2e1424d4-f796-459a-8184-9c92662be6da" },
      ],
    });
  });
});

describe("lambda handler (property)", () => {
  const message = fc.oneof(
    fc.constantFrom(...sqsLambda.Records),
    mutationsOf(sqsLambda.Records[0]),
    mutationsOf(sqsLambda.Records[1]),
    hostileValue,
  );

  test("an SQS batch of hostile messages: never a throw, only messages reported, good ones published", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(message, { minLength: 1, maxLength: 6 }), async (records) => {
        const { handler, batches } = setup();
        const event = {
          Records: records.map((r, i) => ({
            ...(typeof r === "object" && r !== null ? r : { body: r }),
            eventSource: "aws:sqs",
            messageId: `m-${i}`,
          })),
        };
        const result = (await handler(event)) as SqsBatchResponse;
        const failed = new Set(result.batchItemFailures.map((f) => f.itemIdentifier));
        for (const id of failed) expect(id).toMatch(/^m-\d+$/);
        // The unchanged fixture messages with objects are published whatever their neighbours.
        const [withObject, withTwo] = sqsLambda.Records;
        const intact = records.flatMap((r, i) => (r === withObject || r === withTwo ? [i] : []));
        for (const i of intact) expect(failed.has(`m-${i}`)).toBe(false);
        const published = batches.flatMap((b) => b.notifications).length;
        expect(published).toBeGreaterThanOrEqual(intact.length);
      }),
      { numRuns: 200 },
    );
  });

  test("any direct event either publishes or throws InvalidInputError", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(mutationsOf(put), mutationsOf(ebCreated), hostileValue),
        async (e) => {
          const { handler } = setup();
          try {
            await handler(e);
          } catch (err) {
            expect(err).toBeInstanceOf(InvalidInputError);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
