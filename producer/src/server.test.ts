import { describe, expect, test } from "bun:test";
import { createCategorizer } from "./category.ts";
import type { Notification } from "./contract.ts";
import { FandaError } from "./errors.ts";
import multi from "./fixtures/s3-multi.json";
import put from "./fixtures/s3-put.json";
import { createLogger } from "./log.ts";
import { createIngestApp } from "./server.ts";

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
    maxBodyBytes: 4096,
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

  test("answers 413 for a body over the limit", async () => {
    const { published, post } = setup();
    const res = await post(JSON.stringify({ Records: [], pad: "x".repeat(5000) }), {
      "content-length": "5030",
    });
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
