import { describe, expect, test } from "bun:test";
import type { ConsumerState } from "./consumer.ts";
import { createMetrics } from "./metrics.ts";
import { createStatusReport, sumOf } from "./status-report.ts";

const consumer: ConsumerState = { running: true, joined: true, partitions: [0, 1], paused: [] };

describe("status report", () => {
  test("counts per channel and dead letters per reason come from the metrics", async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    metrics.notifications.inc({ channel: "slack", category: "positive" }, 3);
    metrics.notifications.inc({ channel: "slack", category: "negative" }, 2);
    metrics.failures.inc({ channel: "email", category: "positive" });
    metrics.deadLetters.inc({ reason: "delivery-failed" }, 4);
    const report = createStatusReport({
      version: "abc",
      startedAt: "2026-12-01T00:00:00.000Z",
      topic: "t",
      groupId: "g",
      metrics,
      consumerState: () => consumer,
      lag: { last: () => ({ partitions: [] }) },
      recent: { entries: () => [] },
      store: { kind: "redis", healthy: () => true },
      deliveryLog: { kind: "mysql", healthy: () => false },
      dispatch: {
        health: () => ({
          slack: { consecutiveFailures: 0, breakerOpen: false },
          email: { consecutiveFailures: 1, breakerOpen: false },
        }),
      },
      channels: [{ name: "slack", status: () => ({ ratePerSecond: 1 }) }, { name: "email" }],
    });
    try {
      const s = await report.snapshot({
        ready: false,
        reasons: ["delivery log (mysql) unreachable"],
      });
      expect(s.channels).toEqual([
        {
          name: "slack",
          delivered: 5,
          failed: 0,
          health: { consecutiveFailures: 0, breakerOpen: false, provider: { ratePerSecond: 1 } },
        },
        {
          name: "email",
          delivered: 0,
          failed: 1,
          health: { consecutiveFailures: 1, breakerOpen: false },
        },
      ]);
      expect(s.deadLetters).toEqual({ "delivery-failed": 4 });
      expect(s.dependencies).toEqual({
        idempotency: { kind: "redis", healthy: true },
        deliveryLog: { kind: "mysql", healthy: false },
      });
      expect(s).toMatchObject({ version: "abc", ready: false, topic: "t", groupId: "g" });
    } finally {
      report.stop();
    }
  });

  test("sumOf totals a counter and groups it by one label", async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    metrics.failures.inc({ channel: "a", category: "x" }, 2);
    metrics.failures.inc({ channel: "a", category: "y" }, 1);
    metrics.failures.inc({ channel: "b", category: "x" }, 5);
    const { total, byLabel } = await sumOf(metrics.failures, "channel");
    expect(total).toBe(8);
    expect(Object.fromEntries(byLabel)).toEqual({ a: 3, b: 5 });
  });
});
