/**
 * Consumer lag, the required `kafka_consumer_lag{topic,partition}` and `kafka_consumer_lag_sum`:
 * for each partition assigned to this processor, the high watermark minus the group's
 * committed offset (the low watermark when nothing is committed yet). Refreshed on an
 * interval with the admin client, so a scrape never waits on Kafka; each pod reports only
 * its own partitions, so `sum` across pods is the group's lag.
 *
 * Also `fanda_partition_stalled_seconds`: how long a partition with messages waiting has gone
 * without its committed offset moving, whatever the reason (a channel down, the DLQ topic
 * missing, claims held elsewhere, the delivery log down, a send that hangs, the consumer not
 * running). Past the topic's retention Kafka deletes what waits there unseen, so this is what
 * the PartitionStalled alert watches. It counts from the first refresh that saw the partition,
 * so it starts again on a pod that just took the partition over.
 */
import type { Admin, Kafka } from "kafkajs";
import type { Logger } from "../../core/log.ts";
import { ConfigError } from "./errors.ts";
import type { Metrics } from "./metrics.ts";

/** Lag of one partition at the last refresh. */
export interface PartitionLag {
  partition: number;
  high: string;
  committed: string;
  lag: number;
}

/** The lag monitor. */
export interface LagMonitor {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Reads offsets now and updates the gauges; returns the snapshot. */
  refresh(): Promise<PartitionLag[]>;
  /** The last snapshot (empty before the first refresh), with its time. */
  last(): { at?: string; partitions: PartitionLag[]; error?: string };
}

/**
 * Creates the lag monitor.
 * @param options.partitions the partitions assigned to this member right now
 * @throws ConfigError for an interval under 1 s
 */
export function createLagMonitor(options: {
  kafka: Kafka;
  topic: string;
  groupId: string;
  metrics: Metrics;
  logger: Logger;
  partitions: () => number[];
  intervalMs?: number;
  /** Why a partition is not progressing, as the consumer sees it (default "unknown"). */
  reasonOf?: (partition: number) => string;
  /** Clock in ms (tests pass their own). */
  now?: () => number;
}): LagMonitor {
  const intervalMs = options.intervalMs ?? 15_000;
  if (!Number.isInteger(intervalMs) || intervalMs < 1000) {
    throw new ConfigError("lag", ["LAG_INTERVAL_MS: expected an integer >= 1000"]);
  }
  const log = options.logger.child("lag");
  let admin: Admin | undefined;
  let timer: ReturnType<typeof setInterval> | undefined;
  let snapshot: ReturnType<LagMonitor["last"]> = { partitions: [] };
  const now = options.now ?? Date.now;
  /** Per partition: the committed offset last seen, and since when it has not moved. */
  let progress = new Map<number, { committed: string; since: number }>();

  const refresh = async (): Promise<PartitionLag[]> => {
    if (!admin) {
      admin = options.kafka.admin();
      await admin.connect();
    }
    const mine = new Set(options.partitions());
    const [ends, [committed]] = await Promise.all([
      admin.fetchTopicOffsets(options.topic),
      admin.fetchOffsets({ groupId: options.groupId, topics: [options.topic] }),
    ]);
    const byPartition = new Map(committed?.partitions.map((p) => [p.partition, p.offset]) ?? []);
    const lags: PartitionLag[] = ends
      .filter((e) => mine.has(e.partition))
      .map((e) => {
        const c = byPartition.get(e.partition) ?? "-1";
        const base = BigInt(c) < 0n ? BigInt(e.low) : BigInt(c);
        const lag = BigInt(e.high) - base;
        return {
          partition: e.partition,
          high: e.high,
          committed: c,
          lag: Number(lag > 0n ? lag : 0n),
        };
      })
      .sort((a, b) => a.partition - b.partition);
    // Partitions that moved to another pod must stop being reported here.
    options.metrics.consumerLag.reset();
    for (const l of lags) {
      options.metrics.consumerLag.set(
        { topic: options.topic, partition: String(l.partition) },
        l.lag,
      );
    }
    options.metrics.consumerLagSum.set(
      { topic: options.topic },
      lags.reduce((sum, l) => sum + l.lag, 0),
    );
    const t = now();
    const seen = new Map<number, { committed: string; since: number }>();
    options.metrics.partitionStalledSeconds.reset();
    for (const l of lags) {
      const before = progress.get(l.partition);
      const moved = !before || before.committed !== l.committed || l.lag === 0;
      const since = moved ? t : before.since;
      seen.set(l.partition, { committed: l.committed, since });
      options.metrics.partitionStalledSeconds.set(
        {
          topic: options.topic,
          partition: String(l.partition),
          reason: l.lag === 0 ? "none" : (options.reasonOf?.(l.partition) ?? "unknown"),
        },
        (t - since) / 1000,
      );
    }
    progress = seen;
    snapshot = { at: new Date().toISOString(), partitions: lags };
    return lags;
  };

  return {
    async start() {
      timer = setInterval(() => {
        refresh().catch((err: unknown) => {
          snapshot = { ...snapshot, error: (err as Error).message };
          log.warn("lag refresh failed", { err });
        });
      }, intervalMs);
      timer.unref?.();
    },
    async stop() {
      clearInterval(timer);
      await admin?.disconnect().catch(() => {});
      admin = undefined;
    },
    refresh,
    last: () => snapshot,
  };
}
