/**
 * Readiness of the three-broker local cluster (scripts/stack up --brokers 3): waits until
 * every broker is registered, creates the notification topic and its dead-letter topic with
 * replication factor 3 and min.insync.replicas 2 (as on MSK) if they are missing, then waits
 * until every partition of every topic has all its replicas in sync again (after a node
 * restart it has to catch up first).
 *
 *   KAFKA_BROKERS=127.0.0.1:19092,... bun scripts/kafka/cluster.ts [--wait 90] [--brokers 3]
 *     [--partitions 6] [--topic fanda-notifications]
 *
 * The helpers are also what the chaos run uses to find partition leaders.
 */
import { parseArgs } from "node:util";
import { type Kafka, logLevel } from "kafkajs";
import { createKafka, createTopicsKnown, dlqTopicOf } from "../../core/kafka.ts";
import { createLogger } from "../../core/log.ts";

/** Replication as MSK runs it over three AZs. */
export const CLUSTER_REPLICATION = { replicationFactor: 3, minInsyncReplicas: 2 } as const;

/** One partition's placement. */
export interface PartitionPlacement {
  partition: number;
  leader: number;
  replicas: number[];
  isr: number[];
}

/** A quiet admin-capable client for `brokers` (refused connections while nodes boot are expected). */
export function clusterKafka(brokers: string[], clientId = "fanda-cluster"): Kafka {
  return createKafka(
    { brokers, auth: "plaintext", ssl: false, topic: "unused", clientId },
    {
      logger: createLogger({ level: "error", ns: clientId }),
      logLevel: logLevel.NOTHING,
      overrides: { connectionTimeout: 2000, requestTimeout: 5000, retry: { retries: 1 } },
    },
  );
}

/** Creates `topic` and its DLQ with RF 3 / min ISR 2 unless they exist; returns those created. */
export async function ensureReplicatedTopics(
  kafka: Kafka,
  topic: string,
  partitions = 6,
): Promise<string[]> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const wanted = [topic, dlqTopicOf(topic)].filter((t) => !existing.has(t));
    if (wanted.length === 0) return [];
    await createTopicsKnown(
      admin,
      wanted.map((t) => ({
        topic: t,
        numPartitions: partitions,
        replicationFactor: CLUSTER_REPLICATION.replicationFactor,
        configEntries: [
          { name: "min.insync.replicas", value: String(CLUSTER_REPLICATION.minInsyncReplicas) },
        ],
      })),
    );
    return wanted;
  } finally {
    await admin.disconnect();
  }
}

/** Leader, replicas and in-sync replicas of each partition of `topics` (all topics if none). */
export async function placements(
  kafka: Kafka,
  topics?: string[],
): Promise<Map<string, PartitionPlacement[]>> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const meta = await admin.fetchTopicMetadata(topics ? { topics } : undefined);
    return new Map(
      meta.topics.map((t) => [
        t.name,
        t.partitions.map((p) => ({
          partition: p.partitionId,
          leader: p.leader,
          replicas: p.replicas,
          isr: p.isr,
        })),
      ]),
    );
  } finally {
    await admin.disconnect();
  }
}

/** Partitions whose in-sync replicas are fewer than their replicas, as `topic/partition`. */
export function underReplicated(all: Map<string, PartitionPlacement[]>): string[] {
  const out: string[] = [];
  for (const [topic, parts] of all) {
    for (const p of parts)
      if (p.isr.length < p.replicas.length) out.push(`${topic}/${p.partition}`);
  }
  return out;
}

/** Broker ids registered in the cluster. */
export async function brokerIds(kafka: Kafka): Promise<number[]> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return (await admin.describeCluster()).brokers.map((b) => b.nodeId).sort();
  } finally {
    await admin.disconnect();
  }
}

/**
 * Polls `check` (a throw counts as a problem) every 500 ms until it returns a value, or fails after `timeoutMs` with the
 * last problem it reported.
 */
export async function until<T>(
  timeoutMs: number,
  check: () => Promise<{ value: T } | { problem: string }>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let problem = "not checked yet";
  for (;;) {
    try {
      const r = await check();
      if ("value" in r) return r.value;
      problem = r.problem;
    } catch (err) {
      problem = String(err);
    }
    if (Date.now() > deadline) throw new Error(problem);
    await Bun.sleep(500);
  }
}

/**
 * Waits until every address in `brokers` answers a metadata request itself (a node killed a
 * moment ago still looks registered to the others until its session lapses) and `count`
 * brokers are registered.
 */
export function waitForBrokers(
  brokers: string[],
  count: number,
  timeoutMs: number,
): Promise<number[]> {
  return until<number[]>(timeoutMs, async () => {
    let ids: number[] = [];
    for (const address of brokers) {
      try {
        ids = await brokerIds(clusterKafka([address]));
      } catch (err) {
        return { problem: `${address} does not answer: ${String(err)}` };
      }
    }
    return ids.length >= count
      ? { value: ids }
      : { problem: `${ids.length} of ${count} brokers registered (${ids.join(",")})` };
  });
}

/** Waits until every partition of every topic has all its replicas in sync. */
export function waitInSync(kafka: Kafka, timeoutMs: number): Promise<void> {
  return until(timeoutMs, async () => {
    const lagging = underReplicated(await placements(kafka));
    return lagging.length === 0
      ? { value: undefined }
      : { problem: `under-replicated: ${lagging.slice(0, 10).join(" ")}` };
  });
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      wait: { type: "string", default: "90" },
      brokers: { type: "string", default: "3" },
      partitions: { type: "string", default: "6" },
      topic: { type: "string", default: process.env.KAFKA_TOPIC ?? "fanda-notifications" },
    },
  });
  const waitMs = Number(values.wait) * 1000;
  const count = Number(values.brokers);
  const partitions = Number(values.partitions);
  if (!(waitMs > 0) || !Number.isInteger(count) || count < 1 || !Number.isInteger(partitions)) {
    console.error("usage: cluster.ts [--wait SECONDS] [--brokers N] [--partitions N] [--topic T]");
    process.exit(2);
  }
  const brokers = (process.env.KAFKA_BROKERS ?? "127.0.0.1:19092").split(",");
  const kafka = clusterKafka(brokers);
  const deadline = Date.now() + waitMs;
  try {
    const ids = await waitForBrokers(brokers, count, waitMs);
    // Right after the brokers register, creation may still see UNKNOWN_TOPIC_OR_PARTITION
    // while the new leaders settle: retried like the rest.
    const created = await until(Math.max(1000, deadline - Date.now()), async () => ({
      value: await ensureReplicatedTopics(kafka, values.topic as string, partitions),
    }));
    await waitInSync(kafka, Math.max(1000, deadline - Date.now()));
    console.error(
      `[cluster] brokers ${ids.join(",")} answer; every partition fully in sync${
        created.length > 0 ? `; created ${created.join(", ")} (RF 3, min.insync.replicas 2)` : ""
      }`,
    );
  } catch (err) {
    console.error(`[cluster] not ready within ${values.wait}s: ${(err as Error).message}`);
    process.exit(1);
  }
}
