/**
 * Every Prometheus metric of the processor, in one registry. The required names
 * (`notification_total`, `notification_failed_total`) are kept so its alerts keep working.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

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
  channelMisconfigured: Gauge<"channel" | "setting">;
  batchSize: Histogram<never>;
  batchPhaseSeconds: Histogram<"phase">;
  consumerLag: Gauge<"topic" | "partition">;
  consumerLagSum: Gauge<"topic">;
  partitionStalledSeconds: Gauge<"topic" | "partition" | "reason">;
  rateLimitWaitSeconds: Counter<"channel">;
  slackNotificationsPerMessage: Histogram<never>;
  eventLoopStallSeconds: Gauge<never>;
  up: Gauge<"version">;
}

/** prom-client's default metrics left out: see {@link createMetrics}. */
export const HEAP_SPACE_METRICS = [
  "nodejs_heap_space_size_total_bytes",
  "nodejs_heap_space_size_used_bytes",
  "nodejs_heap_space_size_available_bytes",
] as const;

/**
 * Creates a fresh registry with every metric (one per processor; tests get their own).
 * @param options.defaultMetrics also collect process metrics (default true)
 */
export function createMetrics(options: { defaultMetrics?: boolean } = {}): Metrics {
  const registry = new Registry();
  if (options.defaultMetrics ?? true) {
    collectDefaultMetrics({ register: registry });
    // V8's heap spaces: under Bun, v8.getHeapSpaceStatistics() walks the whole heap (~100 ms
    // at 200 MB), so each scrape stalled the event loop, heartbeats and sends included, for
    // figures JSC does not have (every space but old_space reads 0). RSS and heap totals stay.
    for (const name of HEAP_SPACE_METRICS) registry.removeSingleMetric(name);
  }
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
      help: "Messages sent to the dead-letter topic, by reason: invalid-message, unknown-schema-version, delivery-failed, processing-error.",
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
    channelMisconfigured: new Gauge({
      name: "fanda_channel_misconfigured",
      help: "1 while the provider refuses a channel's configuration (revoked token, SES sending paused, webhook 401/404): its messages are deferred until the named setting is fixed.",
      labelNames: ["channel", "setting"],
      registers: [registry],
    }),
    batchPhaseSeconds: new Histogram({
      name: "fanda_batch_phase_seconds",
      help: "Time per consumed batch spent in each phase: decode, claim, deliver, log, commit.",
      labelNames: ["phase"],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
      registers: [registry],
    }),
    consumerLag: new Gauge({
      name: "kafka_consumer_lag",
      help: "Messages not yet committed by the group, per partition assigned to this processor.",
      labelNames: ["topic", "partition"],
      registers: [registry],
    }),
    consumerLagSum: new Gauge({
      name: "kafka_consumer_lag_sum",
      help: "Sum of kafka_consumer_lag over the partitions assigned to this processor.",
      labelNames: ["topic"],
      registers: [registry],
    }),
    partitionStalledSeconds: new Gauge({
      name: "fanda_partition_stalled_seconds",
      help: "Seconds since the group's committed offset last moved on a partition with messages waiting (0 when none wait), per partition assigned to this processor, with the consumer's last reason (channel-down, dlq-unavailable, claimed-elsewhere, audit-unavailable, store-unavailable, in-flight, not-running, ...).",
      labelNames: ["topic", "partition", "reason"],
      registers: [registry],
    }),
    slackNotificationsPerMessage: new Histogram({
      name: "fanda_slack_notifications_per_message",
      help: "Notifications each posted Slack message carried (1, or a digest's count).",
      buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000],
      registers: [registry],
    }),
    rateLimitWaitSeconds: new Counter({
      name: "fanda_rate_limit_wait_seconds_total",
      help: "Time sends spent waiting for a provider's rate limit (token bucket, Retry-After).",
      labelNames: ["channel"],
      registers: [registry],
    }),
    eventLoopStallSeconds: new Gauge({
      name: "fanda_event_loop_stall_seconds",
      help: "Longest delay of the event loop watchdog's tick in the last interval.",
      registers: [registry],
    }),
    up: new Gauge({
      name: "fanda_build_info",
      help: "Always 1; the build version in a label.",
      labelNames: ["version"],
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

/**
 * Every series name `metrics` exports (histograms with their _bucket, _sum and _count), sorted:
 * what alert rules and dashboards may query. kustomize/base/monitoring/exported-metrics.json is
 * this list for a processor with default metrics (metrics.test.ts keeps it current).
 */
export async function exportedNames(metrics: Metrics): Promise<string[]> {
  const names = new Set<string>();
  for (const m of await metrics.registry.getMetricsAsJSON()) {
    names.add(m.name);
    if (String(m.type) === "histogram") {
      for (const s of ["_bucket", "_sum", "_count"]) names.add(`${m.name}${s}`);
    }
  }
  return [...names].sort();
}
