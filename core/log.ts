/**
 * Structured JSON-lines logging, one object per line on stdout (errors on stderr).
 * Small on purpose: fields are flat, `err` is expanded with its cause chain, and
 * nothing that looks like a secret is ever passed in (config redacts before logging).
 * A line written while a trace is active (a message being handled) carries its W3C
 * `trace_id` and `span_id`, so no call site has to pass them.
 */
import { context, isSpanContextValid, trace } from "@opentelemetry/api";

/** Severity, lowest first. */
export type LogLevel = "debug" | "info" | "warn" | "error";

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** A namespaced structured logger. */
export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  /** A logger whose lines carry `ns` = parent namespace + "." + name. */
  child(name: string): Logger;
}

/** Where lines go; injected in tests. */
export type LogSink = (line: string, level: LogLevel) => void;

/** Writes warn and error lines to stderr, the rest to stdout. */
export const defaultSink: LogSink = (line, level) => {
  if (level === "error" || level === "warn") process.stderr.write(`${line}\n`);
  else process.stdout.write(`${line}\n`);
};

function serializeError(err: unknown, depth = 0): unknown {
  if (!(err instanceof Error)) return err;
  const out: Record<string, unknown> = { name: err.name, message: err.message };
  const retriable = (err as { retriable?: unknown }).retriable;
  if (typeof retriable === "boolean") out.retriable = retriable;
  if (err.cause !== undefined && depth < 5) out.cause = serializeError(err.cause, depth + 1);
  return out;
}

/**
 * Creates a logger.
 * @param options.level lowest level written (default `info`)
 * @param options.ns namespace of this logger (default `fanda`)
 * @param options.sink where lines go (default stdout/stderr)
 * @example
 * const log = createLogger({ level: "debug" }).child("consumer");
 * log.info("batch done", { partition: 3, messages: 120 });
 */
export function createLogger(
  options: { level?: LogLevel; ns?: string; sink?: LogSink } = {},
): Logger {
  const min = ORDER[options.level ?? "info"];
  const ns = options.ns ?? "fanda";
  const sink = options.sink ?? defaultSink;
  const write = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => {
    if (ORDER[level] < min) return;
    const record: Record<string, unknown> = { time: new Date().toISOString(), level, ns, msg };
    const span = trace.getSpanContext(context.active());
    if (span && isSpanContextValid(span)) {
      record.trace_id = span.traceId;
      record.span_id = span.spanId;
    }
    if (fields) {
      for (const [k, v] of Object.entries(fields)) record[k] = k === "err" ? serializeError(v) : v;
    }
    sink(JSON.stringify(record), level);
  };
  return {
    debug: (m, f) => write("debug", m, f),
    info: (m, f) => write("info", m, f),
    warn: (m, f) => write("warn", m, f),
    error: (m, f) => write("error", m, f),
    child: (name) => createLogger({ level: options.level ?? "info", ns: `${ns}.${name}`, sink }),
  };
}
