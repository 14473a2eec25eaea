/**
 * Every Prometheus metric of the processor, in one registry. The seed's names
 * (`notification_total`, `notification_failed_total`) are kept so its alerts keep working.
 */
import { Counter, collectDefaultMetrics, Histogram, Registry } from "prom-client";

/** The processor's metrics. */
export interface Metrics {
  registry: Registry;
  notifications: Counter<"channel" | "category">;
  failures: Counter<"channel" | "category">;
  deadLetters: Counter<"reason">;
  sendSeconds: Histogram<"channel" | "outcome">;
  endToEndSeconds: Histogram<"category">;
  retries: Counter<"channel">;
  duplicatesSkipped: Counter<"channel">;
  deferrals: Counter<"reason">;
  batchSize: Histogram<never>;
  batchPhaseSeconds: Histogram<"phase">;
}

/**
 * Creates a fresh registry with every metric (one per processor; tests get their own).
 * @param options.defaultMetrics also collect process metrics (default true)
 */
export function createMetrics(options: { defaultMetrics?: boolean } = {}): Metrics {
  const registry = new Registry();
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  return {
    registry,
    notifications: new Counter({
      name: "notification_total",
      help: "Notifications delivered, by channel and category.",
      labelNames: ["channel", "category"],
      registers: [registry],
    }),
    failures: new Counter({
      name: "notification_failed_total",
      help: "Notifications that failed on a channel after all attempts, by channel and category.",
      labelNames: ["channel", "category"],
      registers: [registry],
    }),
    deadLetters: new Counter({
      name: "fanda_dlq_messages_total",
      help: "Messages sent to the dead-letter topic, by reason.",
      labelNames: ["reason"],
      registers: [registry],
    }),
    sendSeconds: new Histogram({
      name: "fanda_channel_send_seconds",
      help: "Time to a channel's final outcome for one notification, retries included.",
      labelNames: ["channel", "outcome"],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    endToEndSeconds: new Histogram({
      name: "fanda_end_to_end_seconds",
      help: "From the S3 eventTime to delivery on every enabled channel.",
      labelNames: ["category"],
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30, 60],
      registers: [registry],
    }),
    retries: new Counter({
      name: "fanda_delivery_retries_total",
      help: "Failed attempts that were retried, by channel.",
      labelNames: ["channel"],
      registers: [registry],
    }),
    duplicatesSkipped: new Counter({
      name: "fanda_idempotency_skipped_total",
      help: "Deliveries skipped because the channel had already delivered the event.",
      labelNames: ["channel"],
      registers: [registry],
    }),
    deferrals: new Counter({
      name: "fanda_deferrals_total",
      help: "Messages left for later (partition paused), by reason.",
      labelNames: ["reason"],
      registers: [registry],
    }),
    batchPhaseSeconds: new Histogram({
      name: "fanda_batch_phase_seconds",
      help: "Time per consumed batch spent in each phase: decode, claim, deliver, log, commit.",
      labelNames: ["phase"],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
      registers: [registry],
    }),
    batchSize: new Histogram({
      name: "fanda_batch_messages",
      help: "Messages per consumed batch.",
      buckets: [1, 5, 10, 50, 100, 250, 500, 1000, 2500],
      registers: [registry],
    }),
  };
}
