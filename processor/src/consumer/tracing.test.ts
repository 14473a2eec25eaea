import { afterEach, describe, expect, test } from "bun:test";
import { InMemorySpanExporter } from "@opentelemetry/sdk-trace";
import fc from "fast-check";
import type { IHeaders, KafkaMessage } from "kafkajs";
import { hostileString, ownObject } from "../../../core/testing/hostile.ts";
import { startTracing, type Tracing, traceIdOf } from "../../../core/tracing.ts";
import type { Item } from "./handler.ts";
import { traceBatch } from "./tracing.ts";

const TRACE = "0af7651916cd43dd8448eb211c80319c";
const SETTINGS = { serviceName: "t", sampler: "parentbased_always_on", samplerRatio: 1 } as const;

const item = (headers: IHeaders | undefined, offset = "0"): Item => ({
  message: {
    key: null,
    value: null,
    offset,
    timestamp: "0",
    attributes: 0,
    ...(headers ? { headers } : {}),
  } as KafkaMessage,
  final: false,
});

let tracing: Tracing | undefined;
afterEach(async () => {
  await tracing?.shutdown();
  tracing = undefined;
});

describe.each([false, true])("traceBatch (exporting: %p)", (exporting) => {
  const start = async () => {
    const exporter = new InMemorySpanExporter();
    tracing = await startTracing(SETTINGS, exporting ? { exporter } : {});
    return exporter;
  };

  test("a message continues the trace of its traceparent header; one without starts its own", async () => {
    await start();
    const items = [
      item({ traceparent: Buffer.from(`00-${TRACE}-b7ad6b7169203331-01`) }),
      item({ traceparent: Buffer.from("00-not-a-trace-01") }, "1"),
      item(undefined, "2"),
    ];
    const t = traceBatch("topic", 0, "g", items);
    const ids = items.map((i) => traceIdOf(t.contextOf(i)));
    t.end();
    expect(ids[0]).toBe(TRACE);
    expect(ids[1]).toMatch(/^[0-9a-f]{32}$/);
    expect(ids[2]).toMatch(/^[0-9a-f]{32}$/);
    expect(new Set(ids).size).toBe(3);
  });

  test("property: any headers give every message a trace, never a throw", async () => {
    await start();
    const header = fc.oneof(
      hostileString,
      hostileString.map((s) => Buffer.from(s)),
      fc.array(hostileString, { maxLength: 2 }),
      fc.constant(undefined),
    );
    fc.assert(
      fc.property(
        fc.array(fc.array(fc.tuple(hostileString, header), { maxLength: 3 }), { maxLength: 5 }),
        (batches) => {
          const items = batches.map((h, i) => item(ownObject(h) as IHeaders, String(i)));
          const t = traceBatch("topic", 0, "g", items);
          for (const i of items) expect(traceIdOf(t.contextOf(i))).toMatch(/^[0-9a-f]{32}$/);
          t.end("shutdown");
        },
      ),
      { numRuns: 200 },
    );
  });
});

test("exporting: a process span per message under its publish span, a receive span linking them", async () => {
  const exporter = new InMemorySpanExporter();
  tracing = await startTracing(SETTINGS, { exporter });
  const items = [item({ traceparent: `00-${TRACE}-b7ad6b7169203331-01` })];
  const t = traceBatch("topic", 3, "g", items);
  (items[0] as Item).final = true;
  t.end();
  await tracing.forceFlush();
  const spans = exporter.getFinishedSpans();
  const process = spans.find((s) => s.name === "process topic");
  const receive = spans.find((s) => s.name === "receive topic");
  expect(process?.parentSpanContext?.spanId).toBe("b7ad6b7169203331");
  expect(process?.attributes["fanda.outcome"]).toBe("final");
  expect(process?.links[0]?.context.spanId).toBe(receive?.spanContext().spanId as string);
  expect(receive?.links[0]?.context.traceId).toBe(TRACE);
  expect(receive?.attributes["messaging.destination.partition.id"]).toBe("3");
});
