import { describe, expect, test } from "bun:test";
import type { ConsumerState } from "./consumer.ts";
import { createHttpApp } from "./http.ts";
import { createMetrics } from "./metrics.ts";

function app(state: Partial<ConsumerState>, draining = false) {
  const metrics = createMetrics({ defaultMetrics: false });
  metrics.notifications.inc({ channel: "webhook", category: "positive" });
  return createHttpApp({
    consumerState: () => ({ running: true, joined: true, partitions: [0, 1], ...state }),
    registry: metrics.registry,
    draining: () => draining,
    version: "test",
  });
}

describe("processor HTTP", () => {
  test("/healthz is ok while the consumer runs or rebalances", async () => {
    expect((await app({ joined: false }).request("/healthz")).status).toBe(200);
  });

  test("/healthz fails after a fatal crash", async () => {
    const res = await app({ running: false, fatal: new Error("boom") }).request("/healthz");
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ status: "failed", error: "boom" });
  });

  test("/readyz is ready when running and joined", async () => {
    const res = await app({}).request("/readyz");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      status: "ready",
      version: "test",
      checks: { consumer: "running", group: "joined", partitions: [0, 1], draining: false },
    });
  });

  test.each([
    ["not joined", { joined: false }, false],
    ["stopped", { running: false }, false],
    ["draining", {}, true],
  ])("/readyz is 503 when %s", async (_name, state, draining) => {
    const res = await app(state, draining).request("/readyz");
    expect(res.status).toBe(503);
    expect(((await res.json()) as { status: string }).status).toBe("not-ready");
  });

  test("/metrics serves the seed's metric names in Prometheus text format", async () => {
    const res = await app({}).request("/metrics");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/plain");
    const text = await res.text();
    expect(text).toContain('notification_total{channel="webhook",category="positive"} 1');
    expect(text).toContain("# TYPE notification_failed_total counter");
  });
});
