/**
 * The processor's HTTP surface, one port: liveness, readiness and Prometheus metrics.
 * Liveness fails only when the process cannot recover by itself (the consumer crashed for
 * good); readiness fails whenever the processor cannot do its job right now, and says why.
 */
import { Hono } from "hono";
import type { Registry } from "prom-client";
import type { ConsumerState } from "./consumer.ts";
import type { ChannelHealth } from "./dispatch.ts";
import { renderStatus, type StatusSnapshot } from "./status.ts";

/** State of the processor's dependencies, read on each request. */
export interface DependencyState {
  idempotency: { kind: string; healthy: boolean };
  deliveryLog: { kind: string; healthy: boolean };
  channels: Record<string, ChannelHealth>;
}

/** Options of {@link createHttpApp}. */
export interface HttpAppOptions {
  consumerState: () => ConsumerState;
  dependencies: () => DependencyState;
  registry: Registry;
  /** True once shutdown started: readiness goes false so no new traffic is routed here. */
  draining?: () => boolean;
  /** Delivering without idempotency is allowed, so an unhealthy store does not block. */
  idempotencyFailOpen?: boolean;
  /** Build identifier reported by /readyz. */
  version?: string;
  /** The event loop watchdog: /healthz fails while the loop is wedged. */
  watchdog?: { wedged(): boolean; stalledMs(): number };
  /** Data for the status page; without it /status answers 404. */
  status?: (readiness: { ready: boolean; reasons: string[] }) => Promise<StatusSnapshot>;
}

/**
 * Builds the Hono app: `GET /healthz`, `GET /readyz`, `GET /metrics`, `GET /status`
 * (HTML for humans) and `GET /status.json`.
 * @example
 * Bun.serve({ port: 8080, fetch: createHttpApp({ consumerState, dependencies, registry }).fetch });
 */
export function createHttpApp(options: HttpAppOptions): Hono {
  const app = new Hono();
  app.get("/healthz", (c) => {
    const s = options.consumerState();
    if (s.fatal) return c.json({ status: "failed", error: s.fatal.message }, 503);
    if (options.watchdog?.wedged()) {
      return c.json(
        { status: "failed", error: `event loop stalled for ${options.watchdog.stalledMs()} ms` },
        503,
      );
    }
    return c.json({ status: "ok" });
  });
  const readiness = () => {
    const s = options.consumerState();
    const deps = options.dependencies();
    const draining = options.draining?.() ?? false;
    const reasons: string[] = [];
    if (s.fatal) reasons.push(`consumer failed: ${s.fatal.message}`);
    for (const topic of s.missingTopics ?? []) {
      reasons.push(
        `topic ${topic} does not exist: nothing is consumed until it does (create it with scripts/topics.ts)`,
      );
    }
    if (!s.running) reasons.push("consumer not running");
    if (!s.joined) reasons.push("not a member of the consumer group (joining or rebalancing)");
    if (draining) reasons.push("draining for shutdown");
    if (!deps.idempotency.healthy && !options.idempotencyFailOpen) {
      reasons.push(`idempotency store (${deps.idempotency.kind}) unreachable`);
    }
    if (!deps.deliveryLog.healthy) {
      reasons.push(`delivery log (${deps.deliveryLog.kind}) unreachable`);
    }
    return { ready: reasons.length === 0, reasons, s, deps };
  };
  app.get("/readyz", (c) => {
    const { ready, reasons, s, deps } = readiness();
    return c.json(
      {
        status: ready ? "ready" : "not-ready",
        version: options.version ?? "dev",
        reasons,
        consumer: {
          running: s.running,
          joined: s.joined,
          partitions: s.partitions,
          paused: s.paused,
          ...(s.lastBatchAt ? { lastBatchAt: new Date(s.lastBatchAt).toISOString() } : {}),
        },
        dependencies: deps,
      },
      ready ? 200 : 503,
    );
  });
  app.get("/status", async (c) => {
    if (!options.status) return c.notFound();
    const { ready, reasons } = readiness();
    return c.html(renderStatus(await options.status({ ready, reasons })));
  });
  app.get("/status.json", async (c) => {
    if (!options.status) return c.notFound();
    const { ready, reasons } = readiness();
    return c.json(await options.status({ ready, reasons }));
  });
  app.get("/metrics", async (c) => {
    const body = await options.registry.metrics();
    return c.body(body, 200, { "content-type": options.registry.contentType });
  });
  return app;
}
