/**
 * The processor's HTTP surface, one port: liveness, readiness and Prometheus metrics.
 * Liveness fails only when the process cannot recover by itself (the consumer crashed for
 * good); readiness fails whenever the processor cannot do its job right now.
 */
import { Hono } from "hono";
import type { Registry } from "prom-client";
import type { ConsumerState } from "./consumer.ts";

/** Options of {@link createHttpApp}. */
export interface HttpAppOptions {
  consumerState: () => ConsumerState;
  registry: Registry;
  /** True once shutdown started: readiness goes false so no new traffic is routed here. */
  draining?: () => boolean;
  /** Build identifier reported by /readyz. */
  version?: string;
}

/**
 * Builds the Hono app: `GET /healthz`, `GET /readyz`, `GET /metrics`.
 * @example
 * Bun.serve({ port: 8080, fetch: createHttpApp({ consumerState, registry }).fetch });
 */
export function createHttpApp(options: HttpAppOptions): Hono {
  const app = new Hono();
  app.get("/healthz", (c) => {
    const s = options.consumerState();
    if (s.fatal) return c.json({ status: "failed", error: s.fatal.message }, 503);
    return c.json({ status: "ok" });
  });
  app.get("/readyz", (c) => {
    const s = options.consumerState();
    const draining = options.draining?.() ?? false;
    const checks = {
      consumer: s.running ? "running" : "stopped",
      group: s.joined ? "joined" : "not-joined",
      partitions: s.partitions,
      draining,
    };
    const ready = s.running && s.joined && !draining && !s.fatal;
    return c.json(
      { status: ready ? "ready" : "not-ready", version: options.version ?? "dev", checks },
      ready ? 200 : 503,
    );
  });
  app.get("/metrics", async (c) => {
    const body = await options.registry.metrics();
    return c.body(body, 200, { "content-type": options.registry.contentType });
  });
  return app;
}
