/**
 * The last warnings and errors, kept in memory for the status page: on-call sees what went
 * wrong without a log query. Fed by the logger's sink, so everything that is logged at
 * warn or error lands here, already free of secrets like every log line.
 */
import type { LogLevel, LogSink } from "../../core/log.ts";

/** One remembered log record. */
export interface RecentEntry {
  time: string;
  level: LogLevel;
  ns: string;
  msg: string;
  error?: string;
  channel?: string;
  eventId?: string;
}

/** A ring buffer of recent problems. */
export interface Recent {
  /** A log sink that remembers warn/error lines, then passes every line on. */
  sink(next: LogSink): LogSink;
  entries(): RecentEntry[];
}

/** Creates the buffer, keeping the last `size` entries (default 50). */
export function createRecent(size = 50): Recent {
  const ring: RecentEntry[] = [];
  return {
    sink: (next) => (line, level) => {
      if (level === "warn" || level === "error") {
        try {
          const r = JSON.parse(line) as Record<string, unknown>;
          const err = r.err as { message?: string } | undefined;
          ring.push({
            time: String(r.time),
            level,
            ns: String(r.ns),
            msg: String(r.msg),
            ...(err?.message
              ? { error: err.message }
              : typeof r.error === "string"
                ? { error: r.error }
                : {}),
            ...(typeof r.channel === "string" ? { channel: r.channel } : {}),
            ...(typeof r.eventId === "string" ? { eventId: r.eventId } : {}),
          });
          if (ring.length > size) ring.shift();
        } catch {
          // Not our JSON: nothing to remember.
        }
      }
      next(line, level);
    },
    entries: () => [...ring].reverse(),
  };
}
