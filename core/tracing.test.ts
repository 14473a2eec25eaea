import { afterEach, describe, expect, test } from "bun:test";
import { InMemorySpanExporter } from "@opentelemetry/sdk-trace";
import fc from "fast-check";
import { createLogger } from "./log.ts";
import { hostileString, hostileValue, ownObject, PROTOTYPE_NAMES } from "./testing/hostile.ts";
import {
  extractTraceContext,
  injectTraceHeaders,
  newTraceContext,
  runInContext,
  SpanKind,
  spanContextOf,
  startSpan,
  startTracing,
  type Tracing,
  traceIdOf,
  xrayTraceContext,
} from "./tracing.ts";

const SETTINGS = {
  serviceName: "test",
  sampler: "parentbased_always_on",
  samplerRatio: 1,
} as const;
const TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

let tracing: Tracing | undefined;
afterEach(async () => {
  await tracing?.shutdown();
  tracing = undefined;
});

describe("propagation (no SDK)", () => {
  test("extract then inject round-trips traceparent and tracestate", async () => {
    tracing = await startTracing(SETTINGS);
    expect(tracing.exporting).toBe(false);
    const ctx = extractTraceContext({ traceparent: TRACEPARENT, tracestate: "a=1,b=2" });
    expect(traceIdOf(ctx)).toBe("0af7651916cd43dd8448eb211c80319c");
    expect(injectTraceHeaders({}, ctx)).toEqual({
      traceparent: TRACEPARENT,
      tracestate: "a=1,b=2",
    });
  });

  test("reads Kafka headers as Buffers, and the first of repeated values", async () => {
    tracing = await startTracing(SETTINGS);
    const ctx = extractTraceContext({ traceparent: [Buffer.from(TRACEPARENT), "junk"] });
    expect(traceIdOf(ctx)).toBe("0af7651916cd43dd8448eb211c80319c");
  });

  test("a span continues the extracted trace; its headers name it", async () => {
    tracing = await startTracing(SETTINGS);
    const parent = extractTraceContext({ traceparent: TRACEPARENT });
    const { ctx } = startSpan("process", { kind: SpanKind.CONSUMER }, parent);
    expect(traceIdOf(ctx)).toBe("0af7651916cd43dd8448eb211c80319c");
    expect(injectTraceHeaders({}, ctx).traceparent).toStartWith(
      "00-0af7651916cd43dd8448eb211c80319c-",
    );
  });

  test.each([
    ["not a traceparent"],
    ["00-00000000000000000000000000000000-b7ad6b7169203331-01"],
    ["00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01"],
    ["ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"],
    ["00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01"],
    ["00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra"],
  ])("a malformed traceparent (%p) is ignored: the span starts a new trace", async (bad) => {
    tracing = await startTracing(SETTINGS);
    const ctx = extractTraceContext({ traceparent: bad });
    expect(spanContextOf(ctx)).toBeUndefined();
    const started = startSpan("process", {}, ctx).ctx;
    const id = traceIdOf(started);
    expect(id).toMatch(/^[0-9a-f]{32}$/);
    expect(id).not.toBe("0af7651916cd43dd8448eb211c80319c");
    expect(traceIdOf(startSpan("process", {}, ctx).ctx)).not.toBe(id);
  });

  test("never reads inherited properties as headers", async () => {
    tracing = await startTracing(SETTINGS);
    const proto = { traceparent: TRACEPARENT };
    const carrier = Object.create(proto) as Record<string, unknown>;
    expect(spanContextOf(extractTraceContext(carrier))).toBeUndefined();
  });

  test("a tracestate over 512 bytes is not written", async () => {
    tracing = await startTracing(SETTINGS);
    const headers = injectTraceHeaders({}, newTraceContext());
    expect(headers.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    expect(headers.tracestate).toBeUndefined();
  });

  test("log lines carry the active trace id, and none outside a trace", async () => {
    tracing = await startTracing(SETTINGS);
    const lines: Record<string, unknown>[] = [];
    const log = createLogger({ sink: (l) => lines.push(JSON.parse(l)) }).child("x");
    const ctx = extractTraceContext({ traceparent: TRACEPARENT });
    await runInContext(ctx, async () => {
      await Promise.resolve();
      log.info("inside");
    });
    log.info("outside");
    expect(lines[0]).toMatchObject({
      msg: "inside",
      trace_id: "0af7651916cd43dd8448eb211c80319c",
      span_id: "b7ad6b7169203331",
    });
    expect(lines[1]?.trace_id).toBeUndefined();
  });

  test("property: extraction never throws, whatever the headers hold", async () => {
    tracing = await startTracing(SETTINGS);
    const value = fc.oneof(
      hostileValue,
      hostileString.map((s) => Buffer.from(s)),
      fc.array(
        fc.oneof(
          hostileString,
          hostileString.map((s) => Buffer.from(s)),
        ),
        {
          maxLength: 3,
        },
      ),
      fc.constantFrom(TRACEPARENT, `${TRACEPARENT} `, ` ${TRACEPARENT}`),
    );
    const key = fc.oneof(
      fc.constantFrom("traceparent", "tracestate", ...PROTOTYPE_NAMES),
      hostileString,
    );
    fc.assert(
      fc.property(fc.array(fc.tuple(key, value), { maxLength: 4 }), (entries) => {
        const ctx = extractTraceContext(ownObject(entries));
        const id = traceIdOf(ctx);
        if (id !== undefined) expect(id).toMatch(/^[0-9a-f]{32}$/);
        const headers = injectTraceHeaders({}, ctx);
        if (headers.tracestate !== undefined) {
          expect(Buffer.byteLength(headers.tracestate)).toBeLessThanOrEqual(512);
        }
      }),
      { numRuns: 500 },
    );
    for (const odd of [null, undefined, 1, "x", [], () => {}]) {
      expect(() => extractTraceContext(odd as never)).not.toThrow();
    }
  });
});

describe("X-Ray header", () => {
  test("maps Root and Parent to W3C ids, Sampled to the flag", () => {
    const ctx = xrayTraceContext(
      "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1;Lineage=a:1",
    );
    const sc = ctx ? spanContextOf(ctx) : undefined;
    expect(sc).toMatchObject({
      traceId: "5759e988bd862e3fe1be46a994272793",
      spanId: "53995c3f42cd8ad8",
      traceFlags: 1,
    });
  });

  test("without a valid Root or Parent there is nothing to continue", () => {
    expect(xrayTraceContext("Root=1-5759e988-bd862e3fe1be46a994272793")).toBeUndefined();
    expect(xrayTraceContext("Root=2-x;Parent=53995c3f42cd8ad8")).toBeUndefined();
    expect(xrayTraceContext(undefined)).toBeUndefined();
  });

  test("property: never throws on any input", () => {
    fc.assert(
      fc.property(fc.oneof(hostileValue, hostileString), (v) => {
        const ctx = xrayTraceContext(v);
        if (ctx) expect(traceIdOf(ctx)).toMatch(/^[0-9a-f]{32}$/);
      }),
    );
  });
});

describe("SDK", () => {
  test("records spans with parent links and exports them on flush", async () => {
    const exporter = new InMemorySpanExporter();
    tracing = await startTracing(SETTINGS, { exporter });
    expect(tracing.exporting).toBe(true);
    const parent = extractTraceContext({ traceparent: TRACEPARENT });
    const outer = startSpan("outer", {}, parent);
    const inner = runInContext(outer.ctx, () => startSpan("inner"));
    inner.span.end();
    outer.span.end();
    await tracing.forceFlush();
    const spans = exporter.getFinishedSpans();
    expect(spans.map((s) => s.name)).toEqual(["inner", "outer"]);
    expect(spans.every((s) => s.spanContext().traceId === "0af7651916cd43dd8448eb211c80319c")).toBe(
      true,
    );
    expect(spans[0]?.parentSpanContext?.spanId).toBe(outer.span.spanContext().spanId);
    expect(spans[1]?.parentSpanContext?.spanId).toBe("b7ad6b7169203331");
  });

  test("always_off records nothing but still propagates the trace", async () => {
    const exporter = new InMemorySpanExporter();
    tracing = await startTracing({ ...SETTINGS, sampler: "always_off" }, { exporter });
    const { span, ctx } = startSpan("x", {}, newTraceContext());
    span.end();
    await tracing.forceFlush();
    expect(exporter.getFinishedSpans()).toEqual([]);
    expect(traceIdOf(ctx)).toMatch(/^[0-9a-f]{32}$/);
  });

  test("after shutdown nothing is registered: spans are no-ops again", async () => {
    const exporter = new InMemorySpanExporter();
    const t = await startTracing(SETTINGS, { exporter });
    await t.shutdown();
    await t.shutdown();
    startSpan("after").span.end();
    expect(exporter.getFinishedSpans()).toEqual([]);
    expect(injectTraceHeaders({}, newTraceContext())).toEqual({});
  });
});
