/**
 * Assembles what /status and /readyz report from the running parts: the dependencies' health,
 * delivered/failed counts per channel and dead letters per reason (read from the metrics, so
 * the page and Prometheus never disagree), throughput, lag, the consumer and recent errors.
 */
import type { Channel } from "./channels/channel.ts";
import type { ConsumerState } from "./consumer.ts";
import type { Dispatcher } from "./dispatch.ts";
import type { DependencyState } from "./http.ts";
import type { LagMonitor } from "./lag.ts";
import type { Metrics } from "./metrics.ts";
import type { Recent } from "./recent.ts";
import { createRateWindow, type StatusSnapshot } from "./status.ts";

type Counter = {
  get(): Promise<{ values: { value: number; labels: Record<string, unknown> }[] }>;
};

/** A counter's total, and its values summed by one label. */
export async function sumOf(metric: Counter, key?: string) {
  const byLabel = new Map<string, number>();
  let total = 0;
  for (const v of (await metric.get()).values) {
    total += v.value;
    if (key) {
      const label = String(v.labels[key]);
      byLabel.set(label, (byLabel.get(label) ?? 0) + v.value);
    }
  }
  return { total, byLabel };
}

/** Options of {@link createStatusReport}. */
export interface StatusReportOptions {
  version: string;
  startedAt: string;
  topic: string;
  groupId: string;
  metrics: Metrics;
  consumerState: () => ConsumerState;
  lag: Pick<LagMonitor, "last">;
  recent: Pick<Recent, "entries">;
  /** `describe` adds what the store says of itself (the in-memory store: its bound and size). */
  store: { kind: string; healthy(): boolean; describe?(): object };
  deliveryLog: { kind: string; healthy(): boolean };
  dispatch: Pick<Dispatcher, "health">;
  channels: readonly Pick<Channel, "name" | "status">[];
}

/** The two reports, and the throughput sampler to stop at shutdown. */
export interface StatusReport {
  dependencies(): DependencyState;
  snapshot(readiness: { ready: boolean; reasons: string[] }): Promise<StatusSnapshot>;
  stop(): void;
}

/** Creates the report and starts sampling throughput. */
export function createStatusReport(options: StatusReportOptions): StatusReport {
  const { metrics } = options;
  const throughput = createRateWindow({
    total: async () => (await sumOf(metrics.notifications)).total,
  });
  throughput.start();
  const dependencies = (): DependencyState => ({
    idempotency: {
      ...options.store.describe?.(),
      kind: options.store.kind,
      healthy: options.store.healthy(),
    },
    deliveryLog: { kind: options.deliveryLog.kind, healthy: options.deliveryLog.healthy() },
    channels: Object.fromEntries(
      Object.entries(options.dispatch.health()).map(([name, health]) => {
        const provider = options.channels.find((c) => c.name === name)?.status?.();
        return [name, provider ? { ...health, provider } : health];
      }),
    ),
  });
  return {
    dependencies,
    async snapshot({ ready, reasons }) {
      const [delivered, failed, dead] = await Promise.all([
        sumOf(metrics.notifications, "channel"),
        sumOf(metrics.failures, "channel"),
        sumOf(metrics.deadLetters, "reason"),
      ]);
      const deps = dependencies();
      return {
        version: options.version,
        startedAt: options.startedAt,
        now: new Date().toISOString(),
        ready,
        reasons,
        topic: options.topic,
        groupId: options.groupId,
        consumer: options.consumerState(),
        lag: options.lag.last(),
        throughput: throughput.rates(),
        channels: Object.entries(deps.channels).map(([name, health]) => ({
          name,
          delivered: delivered.byLabel.get(name) ?? 0,
          failed: failed.byLabel.get(name) ?? 0,
          health,
        })),
        deadLetters: Object.fromEntries(dead.byLabel),
        dependencies: { idempotency: deps.idempotency, deliveryLog: deps.deliveryLog },
        recent: options.recent.entries(),
      };
    },
    stop: () => throughput.stop(),
  };
}
