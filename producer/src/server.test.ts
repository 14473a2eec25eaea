import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { encodeNotification, MAX_TRACE_ID_BYTES, type Notification } from "../../core/contract.ts";
import { FandaError } from "../../core/errors.ts";
import { createLogger } from "../../core/log.ts";
import { hostileValue, mutationsOf } from "../../core/testing/hostile.ts";
import { createCategorizer } from "./category.ts";
import ebCreated from "./fixtures/eventbridge-created.json";
import multi from "./fixtures/s3-multi.json";
import put from "./fixtures/s3-put.json";
import snsLambda from "./fixtures/sns-lambda.json";
import sqsLambda from "./fixtures/sqs-lambda.json";
import { createIngestApp } from "./server.ts";

/** As the real publisher does: each notification encoded against the contract. */
const encodes = async (ns: readonly Notification[]) => void ns.map(encodeNotification);

function setup(publish?: (ns: readonly Notification[]) => Promise<void>) {
  const published: { notifications: readonly Notification[]; traceId?: string }[] = [];
  const app = createIngestApp({
    publisher: {
      publish: async (notifications, options) => {
        await publish?.(notifications);
        published.push({
          notifications,
          ...(options?.traceId ? { traceId: options.traceId } : {}),
        });
      },
    },
    categorize: createCategorizer(),
    logger: createLogger({ sink: () => {} }),
    maxBodyBytes: 64 * 1024,
  });
  const post = (body: string, headers: Record<string, string> = {}) =>
    app.request("/s3-events", { method: "POST", body, headers });
  return { app, published, post };
}

describe("POST /s3-events", () => {
  test("publishes one message per created object, in one batch, with the trace id", async () => {
    const { published, post } = setup();
    const res = await post(JSON.stringify(multi), { "x-trace-id": "t-1" });
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({ published: 2, skipped: 1 });
    expect(published).toHaveLength(1);
    expect(published[0]?.traceId).toBe("t-1");
    expect(published[0]?.notifications.map((n) => [n.objectKey, n.category])).toEqual([
      ["reports/negative/incident 2026-11.csv", "negative"],
      ["notes/회의록.txt", "general"],
    ]);
  });

  test("classifies by the decoded key", async () => {
    const { published, post } = setup();
    await post(JSON.stringify(put));
    expect(published[0]?.notifications[0]?.category).toBe("positive");
  });

  test.each([
    ["an SNS event", snsLambda, 1, 0],
    ["an SQS event", sqsLambda, 3, 2],
    ["an EventBridge event", ebCreated, 1, 0],
  ])("accepts %s", async (_name, event, published, skipped) => {
    const { post } = setup();
    const res = await post(JSON.stringify(event));
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({ published, skipped });
  });

  test("publishes an EventBridge event whose reason is a built-in property name", async () => {
    const { published, post } = setup();
    const event = { ...ebCreated, detail: { ...ebCreated.detail, reason: "constructor" } };
    const res = await post(JSON.stringify(event));
    expect(res.status).toBe(202);
    expect(published[0]?.notifications[0]?.eventName).toBe("ObjectCreated:constructor");
  });

  test.each([
    ["an empty body", "", /not valid JSON/],
    ["an empty object", "{}", /no Records array/],
    ["Records that is not an array", '{"Records":{}}', /Records is not an array/],
    [
      "a missing bucket",
      JSON.stringify({
        Records: [{ ...put.Records[0], s3: { object: { key: "k", sequencer: "1" } } }],
      }),
      /s3\.bucket/,
    ],
    [
      "a non-date eventTime",
      JSON.stringify({ Records: [{ ...put.Records[0], eventTime: "tuesday" }] }),
      /eventTime/,
    ],
    ["deeply nested JSON", `${"[".repeat(1000)}${"]".repeat(1000)}`, /not a JSON object/],
    ["a deeply nested object", `${'{"a":'.repeat(1000)}1${"}".repeat(1000)}`, /no Records array/],
    ["invalid JSON", "{", /not valid JSON/],
    ["a non-S3 document", '{"hello":1}', /no Records array/],
    ["a record without key", JSON.stringify({ Records: [{}] }), /Records\[0\]/],
  ])("answers 400 for %s and publishes nothing", async (_name, body, message) => {
    const { published, post } = setup();
    const res = await post(body);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toMatch(message);
    expect(published).toHaveLength(0);
  });

  const withObject = (bucket: string, object: Record<string, unknown>) => {
    const r = put.Records[0] as Record<string, unknown> & { s3: { object: object } };
    return JSON.stringify({
      Records: [
        { ...r, s3: { ...r.s3, bucket: { name: bucket }, object: { ...r.s3.object, ...object } } },
      ],
    });
  };

  test.each([
    ["a 2-character bucket name", withObject("ab", {}), /bucket\.name/],
    ["a 64-character bucket name", withObject("b".repeat(64), {}), /bucket\.name/],
    ["a key over 1,024 bytes", withObject("bkt", { key: "k".repeat(1025) }), /1024 UTF-8 bytes/],
  ])("answers 400 (not 503) for %s and publishes nothing", async (_name, body, message) => {
    const { published, post } = setup(encodes);
    const res = await post(body);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toMatch(message);
    expect(published).toHaveLength(0);
  });

  test("answers 400 for a record whose message would exceed the topic's message size", async () => {
    const app = createIngestApp({
      publisher: { publish: encodes },
      categorize: createCategorizer(),
      logger: createLogger({ sink: () => {} }),
      maxBodyBytes: 2 * 1024 * 1024,
    });
    const body = withObject("bkt", { eTag: "e".repeat(1024 * 1024) });
    const res = await app.request("/s3-events", { method: "POST", body });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toMatch(/over the topic's limit/);
  });

  test("answers 413 for a body over the limit, declared or streamed", async () => {
    const { app, published, post } = setup();
    const body = JSON.stringify({ Records: [], pad: "x".repeat(70_000) });
    expect((await post(body, { "content-length": String(body.length) })).status).toBe(413);
    const streamed = new ReadableStream({
      start(controller) {
        controller.enqueue(new TextEncoder().encode(body));
        controller.close();
      },
    });
    const res = await app.request("/s3-events", { method: "POST", body: streamed });
    expect(res.status).toBe(413);
    expect(published).toHaveLength(0);
  });

  test("answers 503 with retriable when Kafka does not take the batch", async () => {
    const { post } = setup(async () => {
      throw new FandaError("kafka: publishing", "broker down", { retriable: true });
    });
    const res = await post(JSON.stringify(put));
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ error: "kafka: publishing: broker down", retriable: true });
  });

  test("answers 500, not 503, when the broker refuses the messages for good", async () => {
    const { post } = setup(async () => {
      throw new FandaError("kafka: publishing", "MESSAGE_TOO_LARGE", { retriable: false });
    });
    const res = await post(JSON.stringify(put));
    expect(res.status).toBe(500);
    expect(await res.json()).toEqual({
      error: "kafka: publishing: MESSAGE_TOO_LARGE",
      retriable: false,
    });
  });

  test("answers 400 for an x-trace-id longer than a message header may be", async () => {
    const { published, post } = setup();
    const res = await post(JSON.stringify(put), {
      "x-trace-id": "t".repeat(MAX_TRACE_ID_BYTES + 1),
    });
    expect(res.status).toBe(400);
    expect(published).toHaveLength(0);
  });

  test("GET /healthz answers ok", async () => {
    const { app } = setup();
    const res = await app.request("/healthz");
    expect(res.status).toBe(200);
  });

  test("refuses a non-positive body limit at construction", () => {
    expect(() =>
      createIngestApp({
        publisher: { publish: async () => {} },
        categorize: () => "general",
        logger: createLogger(),
        maxBodyBytes: 0,
      }),
    ).toThrow(/maxBodyBytes/);
  });
});

describe("POST /s3-events (property)", () => {
  test("any body is published (202) or refused (400/413); never a 5xx", async () => {
    const bodies = fc.oneof(
      fc.string(),
      fc
        .oneof(mutationsOf(put), mutationsOf(snsLambda), mutationsOf(sqsLambda))
        .map((v) => JSON.stringify(v) ?? ""),
      mutationsOf(ebCreated).map((v) => JSON.stringify(v) ?? ""),
      hostileValue.map((v) => JSON.stringify(v) ?? ""),
    );
    const { post } = setup(encodes);
    await fc.assert(
      fc.asyncProperty(bodies, async (body) => {
        const res = await post(body);
        expect([202, 400, 413]).toContain(res.status);
      }),
      { numRuns: 300 },
    );
  });
});
