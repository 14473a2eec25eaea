/** The log channel's line: the notification as the contract has it, and the trace it was sent in. */
import { describe, expect, test } from "bun:test";
import { extractTraceContext, runInContext, startTracing } from "../../../../core/tracing.ts";
import { aNotification } from "../../../../test/support/notifications.ts";
import { createLogChannel } from "./log.ts";

const never = new AbortController().signal;

describe("log channel", () => {
  test("writes one JSON line per notification with the active trace id; none outside a trace", async () => {
    const tracing = await startTracing({
      serviceName: "t",
      sampler: "parentbased_always_on",
      samplerRatio: 1,
    });
    try {
      const lines: string[] = [];
      const log = createLogChannel({ write: (line) => lines.push(line) });
      const traced = aNotification();
      const untraced = aNotification();
      const ctx = extractTraceContext({
        traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
      });
      await runInContext(ctx, () => log.send(traced, { signal: never, target: {} }));
      await log.send(untraced, { signal: never, target: {} });
      expect(lines).toHaveLength(2);
      expect(lines.every((l) => !l.includes("\n"))).toBe(true);
      expect(JSON.parse(lines[0] as string)).toEqual({
        channel: "log",
        notification: traced,
        trace_id: "0af7651916cd43dd8448eb211c80319c",
      });
      expect(JSON.parse(lines[1] as string)).toEqual({ channel: "log", notification: untraced });
    } finally {
      await tracing.shutdown();
    }
  });
});
