import { describe, expect, test } from "bun:test";
import type { ConsumerState } from "./consumer.ts";
import { createHttpApp, type DependencyState } from "./http.ts";
import { createMetrics } from "./metrics.ts";

const healthyDeps: DependencyState = {
  idempotency: { kind: "redis", healthy: true },
  deliveryLog: { kind: "mysql", healthy: true },
  channels: { webhook: { consecutiveFailures: 0, breakerOpen: false } },
};

function app(
  state: Partial<ConsumerState>,
  options: { draining?: boolean; deps?: Partial<DependencyState>; failOpen?: boolean } = {},
) {
  const metrics = createMetrics({ defaultMetrics: false });
  metrics.notifications.inc({ channel: "webhook", category: "positive" });
  return createHttpApp({
    consumerState: () => ({
      running: true,
      joined: true,
      partitions: [0, 1],
      paused: [],
      ...state,
    }),
    dependencies: () => ({ ...healthyDeps, ...options.deps }),
    registry: metrics.registry,
    draining: () => options.draining ?? false,
    idempotencyFailOpen: options.failOpen ?? false,
    version: "test",
  });
}

describe("processor HTTP", () => {
  test("/healthz is ok while the consumer runs or rebalances, even with dependencies down", async () => {
    const res = await app(
      { joined: false },
      { deps: { deliveryLog: { kind: "mysql", healthy: false } } },
    ).request("/healthz");
    expect(res.status).toBe(200);
  });

  test("/healthz fails after a fatal crash", async () => {
    const res = await app({ running: false, fatal: new Error("boom") }).request("/healthz");
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ status: "failed", error: "boom" });
  });

  test("/readyz is ready when running, joined and every dependency answers", async () => {
    const res = await app({}).request("/readyz");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      status: "ready",
      version: "test",
      reasons: [],
      consumer: { running: true, joined: true, partitions: [0, 1], paused: [] },
      dependencies: healthyDeps,
    });
  });

  test.each([
    ["not joined", { joined: false }, {}, "not a member of the consumer group"],
    ["stopped", { running: false }, {}, "consumer not running"],
    [
      "the DLQ topic is missing",
      { running: false, missingTopics: ["fanda-notifications.dlq"] },
      {},
      "topic fanda-notifications.dlq does not exist",
    ],
    ["draining", {}, { draining: true }, "draining for shutdown"],
    [
      "Redis is down",
      {},
      { deps: { idempotency: { kind: "redis", healthy: false } } },
      "idempotency store (redis) unreachable",
    ],
    [
      "MySQL is down",
      {},
      { deps: { deliveryLog: { kind: "mysql", healthy: false } } },
      "delivery log (mysql) unreachable",
    ],
  ])("/readyz is 503 when %s, saying why", async (_name, state, options, reason) => {
    const res = await app(state, options).request("/readyz");
    expect(res.status).toBe(503);
    const body = (await res.json()) as { status: string; reasons: string[] };
    expect(body.status).toBe("not-ready");
    expect(body.reasons.join("\n")).toContain(reason);
  });

  test("/readyz stays ready with Redis down when delivery without idempotency is allowed", async () => {
    const res = await app(
      {},
      { failOpen: true, deps: { idempotency: { kind: "redis", healthy: false } } },
    ).request("/readyz");
    expect(res.status).toBe(200);
  });

  test("/metrics serves the required metric names in Prometheus text format", async () => {
    const res = await app({}).request("/metrics");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/plain");
    const text = await res.text();
    expect(text).toContain('notification_total{channel="webhook",category="positive"} 1');
    expect(text).toContain("# TYPE notification_failed_total counter");
  });
});
