/** The producer's trace context: continued from the caller, or one new trace per S3 record. */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import type { Notification } from "../../core/contract.ts";
import { createLogger } from "../../core/log.ts";
import { type Context, startTracing, type Tracing, traceIdOf } from "../../core/tracing.ts";
import { createCategorizer } from "./category.ts";
import multi from "./fixtures/s3-multi.json";
import put from "./fixtures/s3-put.json";
import sqsLambda from "./fixtures/sqs-lambda.json";
import { createHandler, type ProducerRuntime } from "./lambda.ts";
import { createIngestApp } from "./server.ts";

const CALLER = "4bf92f3577b34da6a3ce929d0e0e4736";
const XRAY = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8";

let tracing: Tracing;
beforeEach(async () => {
  tracing = await startTracing({
    serviceName: "t",
    sampler: "parentbased_always_on",
    samplerRatio: 1,
  });
});
afterEach(() => tracing.shutdown());

/** The trace ids each publish call was given, per notification. */
function recorder(fail?: Error) {
  const calls: { notifications: readonly Notification[]; traces: (string | undefined)[] }[] = [];
  const publish = async (
    notifications: readonly Notification[],
    options?: { contexts?: readonly Context[] },
  ) => {
    calls.push({
      notifications,
      traces: notifications.map((_, i) => {
        const ctx = options?.contexts?.[i];
        return ctx ? traceIdOf(ctx) : undefined;
      }),
    });
    if (fail) throw fail;
  };
  return { calls, publish };
}

describe("ingest", () => {
  const app = (publish: ReturnType<typeof recorder>["publish"]) =>
    createIngestApp({
      publisher: { publish },
      categorize: createCategorizer(),
      logger: createLogger({ sink: () => {} }),
    });

  test("continues the request's traceparent for every record", async () => {
    const { calls, publish } = recorder();
    const res = await app(publish).request("/s3-events", {
      method: "POST",
      body: JSON.stringify(multi),
      headers: { traceparent: `00-${CALLER}-00f067aa0ba902b7-01` },
    });
    expect(res.status).toBe(202);
    expect(calls[0]?.traces).toEqual([CALLER, CALLER]);
  });

  test("without one (or with a malformed one) each record starts a trace of its own", async () => {
    const cases: Record<string, string>[] = [{}, { traceparent: "00-zz-00f067aa0ba902b7-01" }];
    for (const headers of cases) {
      const { calls, publish } = recorder();
      await app(publish).request("/s3-events", {
        method: "POST",
        body: JSON.stringify(multi),
        headers,
      });
      const [a, b] = calls[0]?.traces ?? [];
      expect(a).toMatch(/^[0-9a-f]{32}$/);
      expect(b).toMatch(/^[0-9a-f]{32}$/);
      expect(a).not.toBe(b);
    }
  });
});

describe("lambda", () => {
  const withXray = async <T>(value: string | undefined, fn: () => Promise<T>): Promise<T> => {
    const before = process.env._X_AMZN_TRACE_ID;
    if (value === undefined) delete process.env._X_AMZN_TRACE_ID;
    else process.env._X_AMZN_TRACE_ID = value;
    try {
      return await fn();
    } finally {
      if (before === undefined) delete process.env._X_AMZN_TRACE_ID;
      else process.env._X_AMZN_TRACE_ID = before;
    }
  };
  const handlerOf = (publish: ReturnType<typeof recorder>["publish"], flushes: string[]) => {
    const runtime: ProducerRuntime = {
      publisher: { publish },
      categorize: createCategorizer(),
      notifyOnRemoved: false,
      logger: createLogger({ sink: () => {} }),
      flush: async () => void flushes.push("flush"),
    };
    return createHandler(async () => runtime);
  };

  test("continues a sampled X-Ray trace", async () => {
    const { calls, publish } = recorder();
    const flushes: string[] = [];
    await withXray(`${XRAY};Sampled=1`, () => handlerOf(publish, flushes)(put, {}));
    expect(calls[0]?.traces).toEqual(["5759e988bd862e3fe1be46a994272793"]);
    expect(flushes).toEqual(["flush"]);
  });

  test("an unsampled X-Ray header is not continued: each record starts its own trace", async () => {
    const { calls, publish } = recorder();
    await withXray(`${XRAY};Sampled=0`, () => handlerOf(publish, [])(put, {}));
    const [t] = calls[0]?.traces ?? [];
    expect(t).toMatch(/^[0-9a-f]{32}$/);
    expect(t).not.toBe("5759e988bd862e3fe1be46a994272793");
  });

  test("spans are flushed before the invocation ends, also when it fails", async () => {
    const { publish } = recorder(new Error("broker down"));
    const flushes: string[] = [];
    await withXray(undefined, async () => {
      await expect(handlerOf(publish, flushes)(put, {})).rejects.toThrow("broker down");
      await handlerOf(publish, flushes)(sqsLambda, {});
    });
    expect(flushes).toEqual(["flush", "flush"]);
  });
});
