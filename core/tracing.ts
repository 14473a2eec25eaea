/**
 * Tracing with OpenTelemetry and W3C trace context, shared by producer and processor.
 *
 * Two levels, so that tracing costs nothing when nobody collects it:
 * - Propagation, always on once {@link startTracing} ran: the W3C `traceparent`/`tracestate`
 *   propagator and an AsyncLocalStorage context manager. A message carries its trace from the
 *   upload to every channel, and log lines about it carry its `trace_id`, exporter or not.
 * - The SDK (tracer provider, batch span processor, OTLP/HTTP exporter), only when an OTLP
 *   endpoint is configured and OTEL_SDK_DISABLED is not set; it is loaded only then. Without
 *   it spans are the API's non-recording ones: no timing, no attributes, nothing exported.
 *
 * The settings are the standard OTEL_* variables (see {@link tracingEnvShape}).
 */
import { AsyncLocalStorage } from "node:async_hooks";
import {
  type Context,
  type ContextManager,
  context,
  isSpanContextValid,
  type Link,
  propagation,
  ROOT_CONTEXT,
  type Span,
  type SpanContext,
  SpanKind,
  type SpanOptions,
  SpanStatusCode,
  type TextMapGetter,
  type TextMapSetter,
  TraceFlags,
  trace,
} from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import type { SpanExporter } from "@opentelemetry/sdk-trace";
import { z } from "zod";
import { MAX_TRACESTATE_BYTES } from "./contract.ts";
import { type Env, envBoolean, envUrl } from "./env.ts";

export { type Context, type Link, type Span, SpanKind, SpanStatusCode };

/** The instrumentation scope of every Fanda span. */
export const TRACER_NAME = "fanda";

/** OTEL_TRACES_SAMPLER values understood (the SDK's built-in samplers). */
export const OTEL_SAMPLERS = [
  "always_on",
  "always_off",
  "traceidratio",
  "parentbased_always_on",
  "parentbased_always_off",
  "parentbased_traceidratio",
] as const;

const protocol = z.enum(["http/json"], {
  error: "only http/json is supported (OTLP over HTTP with JSON bodies)",
});

/** The tracing part of every entry point's environment: the standard OTEL_* variables. */
export const tracingEnvShape = {
  OTEL_SDK_DISABLED: envBoolean(false),
  OTEL_EXPORTER_OTLP_ENDPOINT: envUrl().optional(),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: envUrl().optional(),
  OTEL_EXPORTER_OTLP_PROTOCOL: protocol.optional(),
  OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: protocol.optional(),
  OTEL_TRACES_EXPORTER: z.enum(["otlp", "none"], { error: "expected otlp or none" }).optional(),
  OTEL_SERVICE_NAME: z
    .string()
    .regex(/^[\x21-\x7e]{1,255}$/, "expected printable ASCII without spaces, 1-255 characters")
    .optional(),
  OTEL_TRACES_SAMPLER: z
    .enum(OTEL_SAMPLERS, { error: `expected one of ${OTEL_SAMPLERS.join(", ")}` })
    .default("parentbased_always_on"),
  OTEL_TRACES_SAMPLER_ARG: z.coerce
    .number({ error: "expected a ratio from 0 to 1" })
    .min(0, "expected a ratio from 0 to 1")
    .max(1, "expected a ratio from 0 to 1")
    .optional(),
};

/** Parsed tracing settings. */
export interface TracingSettings {
  /** Where spans go (the traces URL); unset: no SDK, propagation only. */
  tracesUrl?: string;
  serviceName: string;
  sampler: (typeof OTEL_SAMPLERS)[number];
  /** Ratio of the traceidratio samplers (default 1). */
  samplerRatio: number;
}

/** Cross-variable checks of the tracing settings (see parseEnv's checks). */
export function checkTracingEnv(raw: Env): string[] {
  const issues: string[] = [];
  const sampler = raw.OTEL_TRACES_SAMPLER ?? "";
  if (raw.OTEL_TRACES_SAMPLER_ARG !== undefined && !sampler.endsWith("traceidratio")) {
    issues.push("OTEL_TRACES_SAMPLER_ARG: only read with a traceidratio sampler");
  }
  return issues;
}

/** The traces URL the OTLP/HTTP exporter posts to: the signal's own, or the base + v1/traces. */
function tracesUrlOf(base?: string, traces?: string): string | undefined {
  if (traces) return traces;
  if (!base) return undefined;
  return `${base.endsWith("/") ? base : `${base}/`}v1/traces`;
}

/**
 * Maps the parsed variables of {@link tracingEnvShape} to {@link TracingSettings}.
 * @param defaultServiceName the service name when OTEL_SERVICE_NAME is unset
 */
export function tracingSettingsFrom(
  env: {
    OTEL_SDK_DISABLED: boolean;
    OTEL_EXPORTER_OTLP_ENDPOINT?: string | undefined;
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?: string | undefined;
    OTEL_TRACES_EXPORTER?: "otlp" | "none" | undefined;
    OTEL_SERVICE_NAME?: string | undefined;
    OTEL_TRACES_SAMPLER: TracingSettings["sampler"];
    OTEL_TRACES_SAMPLER_ARG?: number | undefined;
  },
  defaultServiceName: string,
): TracingSettings {
  const off = env.OTEL_SDK_DISABLED || env.OTEL_TRACES_EXPORTER === "none";
  const url = off
    ? undefined
    : tracesUrlOf(env.OTEL_EXPORTER_OTLP_ENDPOINT, env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
  return {
    ...(url ? { tracesUrl: url } : {}),
    serviceName: env.OTEL_SERVICE_NAME ?? defaultServiceName,
    sampler: env.OTEL_TRACES_SAMPLER,
    samplerRatio: env.OTEL_TRACES_SAMPLER_ARG ?? 1,
  };
}

/** The current context in an AsyncLocalStorage: follows awaits, timers and callbacks. */
class AsyncLocalContextManager implements ContextManager {
  readonly #storage = new AsyncLocalStorage<Context>();
  active(): Context {
    return this.#storage.getStore() ?? ROOT_CONTEXT;
  }
  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(
    ctx: Context,
    fn: F,
    thisArg?: ThisParameterType<F>,
    ...args: A
  ): ReturnType<F> {
    const call = thisArg === undefined ? fn : (fn.bind(thisArg) as F);
    return this.#storage.run(ctx, call, ...args);
  }
  bind<T>(ctx: Context, target: T): T {
    if (typeof target !== "function") return target;
    const fn = target as unknown as (...args: unknown[]) => unknown;
    return ((...args: unknown[]) => this.with(ctx, fn, undefined, ...args)) as T;
  }
  enable(): this {
    return this;
  }
  disable(): this {
    this.#storage.disable();
    return this;
  }
}

/** Started tracing: flush at the end of an invocation, shut down at exit. */
export interface Tracing {
  /** True when spans are recorded and exported (an endpoint is configured). */
  readonly exporting: boolean;
  /** Exports every ended span now (Lambda: before the invocation returns). Never throws. */
  forceFlush(): Promise<void>;
  /** Flushes, then unregisters everything {@link startTracing} registered. Never throws. */
  shutdown(): Promise<void>;
}

/** Options of {@link startTracing}. */
export interface TracingOptions {
  /** Where spans go instead of OTLP/HTTP (tests); makes the SDK start without an endpoint. */
  exporter?: SpanExporter;
  /** Told when the exporter fails (flush or shutdown); the default ignores it. */
  onError?: (err: unknown) => void;
}

let exportingNow = false;

/** True while an SDK records spans: instrumentation skips work only a recorder needs (links). */
export const isExporting = () => exportingNow;

/** What is registered now, shared by every {@link startTracing} of the process. */
let registered: { tracing: Tracing; users: number } | undefined;

/**
 * Registers propagation (always) and the SDK with its OTLP/HTTP exporter (only with
 * `settings.tracesUrl` or `options.exporter`), before the first message. OpenTelemetry's
 * registrations are global: a second call while the first is running (two processors in one
 * test process) shares the first's, and only the last shutdown unregisters them.
 * The exporter reads OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT and _COMPRESSION from the process
 * environment itself.
 * @example
 * const tracing = await startTracing(config.tracing);
 * // … at exit:
 * await tracing.shutdown();
 */
export async function startTracing(
  settings: TracingSettings,
  options: TracingOptions = {},
): Promise<Tracing> {
  if (!registered) {
    const tracing = await register(settings, options);
    registered = { tracing, users: 0 };
  }
  const shared = registered;
  shared.users++;
  let released = false;
  return {
    exporting: shared.tracing.exporting,
    forceFlush: () => shared.tracing.forceFlush(),
    shutdown: async () => {
      if (released) return;
      released = true;
      if (--shared.users > 0) return shared.tracing.forceFlush();
      if (registered === shared) registered = undefined;
      await shared.tracing.shutdown();
    },
  };
}

async function register(settings: TracingSettings, options: TracingOptions): Promise<Tracing> {
  const manager = new AsyncLocalContextManager();
  context.setGlobalContextManager(manager);
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  const unregister = () => {
    exportingNow = false;
    trace.disable();
    propagation.disable();
    context.disable();
  };
  const onError = options.onError ?? (() => {});
  if (!settings.tracesUrl && !options.exporter) {
    return {
      exporting: false,
      forceFlush: async () => {},
      shutdown: async () => unregister(),
    };
  }
  // Loaded only when spans are exported: a process without an endpoint never pays for the SDK.
  const sdk = await import("@opentelemetry/sdk-trace");
  const { resourceFromAttributes } = await import("@opentelemetry/resources");
  const { ATTR_SERVICE_NAME } = await import("@opentelemetry/semantic-conventions");
  let exporter = options.exporter;
  if (!exporter) {
    const { OTLPTraceExporter } = await import("@opentelemetry/exporter-trace-otlp-http");
    exporter = new OTLPTraceExporter({ url: settings.tracesUrl as string });
  }
  const ratio = new sdk.TraceIdRatioBasedSampler(settings.samplerRatio);
  const root = {
    always_on: new sdk.AlwaysOnSampler(),
    always_off: new sdk.AlwaysOffSampler(),
    traceidratio: ratio,
    parentbased_always_on: new sdk.AlwaysOnSampler(),
    parentbased_always_off: new sdk.AlwaysOffSampler(),
    parentbased_traceidratio: ratio,
  }[settings.sampler];
  const sampler = settings.sampler.startsWith("parentbased_")
    ? new sdk.ParentBasedSampler({ root })
    : root;
  const provider = new sdk.TracerProvider({
    resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: settings.serviceName }),
    sampler,
    spanProcessors: [new sdk.BatchSpanProcessor({ exporter })],
  });
  trace.setGlobalTracerProvider(provider);
  exportingNow = true;
  let stopped: Promise<void> | undefined;
  return {
    exporting: true,
    forceFlush: () => provider.forceFlush().catch(onError),
    shutdown: () => {
      stopped ??= provider
        .shutdown()
        .catch(onError)
        .finally(() => unregister());
      return stopped;
    },
  };
}

/** The Fanda tracer (the global provider's; a no-op one until an SDK is registered). */
export const tracer = () => trace.getTracer(TRACER_NAME);

const idBytes = new Uint8Array(24);
const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");

/**
 * A new trace's context without an SDK: random ids, marked sampled so that a downstream
 * service that does record (its sampler follows the parent) records this trace too.
 */
export function newTraceContext(parent: Context = ROOT_CONTEXT): Context {
  crypto.getRandomValues(idBytes);
  return trace.setSpanContext(parent, {
    traceId: hex(idBytes.subarray(0, 16)),
    spanId: hex(idBytes.subarray(16, 24)),
    traceFlags: TraceFlags.SAMPLED,
  });
}

/**
 * Starts a span under `parent` (default: the active context). With no trace to continue and no
 * SDK, it starts a new trace of its own (random ids), so the trace id still reaches the logs,
 * the headers and the providers.
 * @returns the span and the context it is active in
 */
export function startSpan(
  name: string,
  options: SpanOptions = {},
  parent: Context = context.active(),
): { span: Span; ctx: Context } {
  if (!exportingNow) {
    // Nothing records: the span would be the parent's context again. Skipping the no-op
    // tracer and a context per span is most of what propagation costs per message.
    const current = options.root ? undefined : trace.getSpan(parent);
    if (current && isSpanContextValid(current.spanContext())) return { span: current, ctx: parent };
    const ctx = newTraceContext(parent);
    return { span: trace.getSpan(ctx) as Span, ctx };
  }
  let span = tracer().startSpan(name, options, parent);
  if (!isSpanContextValid(span.spanContext())) {
    span = trace.getSpan(newTraceContext()) as Span;
  }
  return { span, ctx: trace.setSpan(parent, span) };
}

/** Ends `span` with an error status for `err` (its message; never throws). */
export function endWithError(span: Span, err: unknown): void {
  let message = "error";
  try {
    message = err instanceof Error ? err.message : String(err);
  } catch {
    // An error whose printing throws keeps the generic message.
  }
  span.setStatus({ code: SpanStatusCode.ERROR, message });
  span.end();
}

/** A carrier's header value as the propagator reads it: string(s), Buffers decoded. */
type HeaderValue = string | Buffer | Uint8Array | readonly (string | Buffer | Uint8Array)[];

const asText = (v: unknown): string | undefined =>
  typeof v === "string"
    ? v
    : v instanceof Uint8Array
      ? Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("utf8")
      : undefined;

/** Reads headers (Kafka's, HTTP's) by own property only, whatever their values are. */
const getter: TextMapGetter<Record<string, unknown>> = {
  keys: (carrier) => Object.keys(carrier),
  get(carrier, key) {
    if (!Object.hasOwn(carrier, key)) return undefined;
    const value: unknown = carrier[key];
    if (Array.isArray(value)) {
      const texts = value.map(asText).filter((t): t is string => t !== undefined);
      return texts.length > 0 ? texts : undefined;
    }
    return asText(value);
  },
};

const setter: TextMapSetter<Record<string, string>> = {
  set(carrier, key, value) {
    // An empty tracestate (every member invalid) is no tracestate; a longer one than the
    // contract's bound is not carried (the W3C limit, so only a broken caller sends one).
    if (key === "tracestate" && (value === "" || Buffer.byteLength(value) > MAX_TRACESTATE_BYTES)) {
      return;
    }
    carrier[key] = value;
  },
};

/**
 * The context carried by `headers` (`traceparent`, `tracestate`) under `parent`; `parent`
 * itself when they carry none or a malformed one. Never throws, whatever the headers hold.
 */
export function extractTraceContext(
  headers: Record<string, HeaderValue | unknown> | null | undefined,
  parent: Context = ROOT_CONTEXT,
): Context {
  if (headers === null || typeof headers !== "object") return parent;
  try {
    return propagation.extract(parent, headers as Record<string, unknown>, getter);
  } catch {
    return parent;
  }
}

/** Writes `traceparent` (and `tracestate`) of `ctx` (default: the active one) into `headers`. */
export function injectTraceHeaders(
  headers: Record<string, string>,
  ctx: Context = context.active(),
): Record<string, string> {
  propagation.inject(ctx, headers, setter);
  return headers;
}

/** The trace id of `ctx` (default: the active context), when it carries a valid one. */
export function traceIdOf(ctx: Context = context.active()): string | undefined {
  const sc: SpanContext | undefined = trace.getSpanContext(ctx);
  return sc && isSpanContextValid(sc) ? sc.traceId : undefined;
}

/** The span context of `ctx` when valid (for links). */
export function spanContextOf(ctx: Context): SpanContext | undefined {
  const sc = trace.getSpanContext(ctx);
  return sc && isSpanContextValid(sc) ? sc : undefined;
}

/** Runs `fn` with `ctx` as the active context. */
export const runInContext = <T>(ctx: Context, fn: () => T): T => context.with(ctx, fn);

/**
 * The context of an X-Ray trace header (Lambda's `_X_AMZN_TRACE_ID`:
 * `Root=1-<8 hex>-<24 hex>;Parent=<16 hex>;Sampled=<0|1>;…`) as W3C ids, as the X-Ray
 * propagator maps them; undefined when it has no valid Root and Parent. Never throws.
 */
export function xrayTraceContext(
  header: unknown,
  parent: Context = ROOT_CONTEXT,
): Context | undefined {
  if (typeof header !== "string" || header.length > 4096) return undefined;
  let traceId: string | undefined;
  let spanId: string | undefined;
  let sampled = false;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (key === "Root") {
      const m = /^1-([0-9a-f]{8})-([0-9a-f]{24})$/.exec(value);
      if (m) traceId = `${m[1]}${m[2]}`;
    } else if (key === "Parent") {
      if (/^[0-9a-f]{16}$/.test(value)) spanId = value;
    } else if (key === "Sampled") {
      sampled = value === "1";
    }
  }
  if (!traceId || !spanId) return undefined;
  const sc: SpanContext = {
    traceId,
    spanId,
    traceFlags: sampled ? TraceFlags.SAMPLED : TraceFlags.NONE,
    isRemote: true,
  };
  return isSpanContextValid(sc) ? trace.setSpanContext(parent, sc) : undefined;
}

/** The parent of a span that must start a new trace (ignores whatever context is active). */
export const ROOT_CONTEXT_FOR_NEW_TRACE: Context = ROOT_CONTEXT;

/** True when `ctx` carries a valid span context (an incoming trace to continue). */
export const hasTrace = (ctx: Context | undefined): ctx is Context =>
  ctx !== undefined && spanContextOf(ctx) !== undefined;
