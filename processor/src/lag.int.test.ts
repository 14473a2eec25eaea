/** Consumer lag against the real broker: high watermark minus the group's committed offset. */
import { afterAll, expect, test } from "bun:test";
import { dlqTopicOf, ensureTopics } from "../../core/kafka.ts";
import { createLogger } from "../../core/log.ts";
import { localKafka } from "../../test/support/local.ts";
import { createLagMonitor } from "./lag.ts";
import { createMetrics } from "./metrics.ts";

const topic = `fanda-lag-${crypto.randomUUID().slice(0, 8)}`;
const groupId = `${topic}-group`;
const logger = createLogger({ level: "error" });
const kafka = localKafka("fanda-test", { topic });

afterAll(async () => {
  const admin = kafka.admin();
  await admin.connect();
  await admin.deleteTopics({ topics: [topic, dlqTopicOf(topic)] }).catch(() => {});
  await admin.disconnect();
});

test("reports lag per assigned partition and their sum, in the required metric names", async () => {
  await ensureTopics(kafka, topic, { partitions: 2 });
  const producer = kafka.producer();
  await producer.connect();
  await producer.send({
    topic,
    messages: Array.from({ length: 5 }, () => ({ partition: 0, value: "a" })),
  });
  await producer.send({
    topic,
    messages: Array.from({ length: 3 }, () => ({ partition: 1, value: "b" })),
  });
  await producer.disconnect();
  const admin = kafka.admin();
  await admin.connect();
  await admin.setOffsets({ groupId, topic, partitions: [{ partition: 0, offset: "2" }] });
  await admin.disconnect();

  const metrics = createMetrics({ defaultMetrics: false });
  let assigned = [0, 1];
  const monitor = createLagMonitor({
    kafka,
    topic,
    groupId,
    metrics,
    logger,
    partitions: () => assigned,
  });
  expect(await monitor.refresh()).toEqual([
    { partition: 0, high: "5", committed: "2", lag: 3 },
    { partition: 1, high: "3", committed: "-1", lag: 3 },
  ]);
  let text = await metrics.registry.metrics();
  expect(text).toContain(`kafka_consumer_lag{topic="${topic}",partition="0"} 3`);
  expect(text).toContain(`kafka_consumer_lag_sum{topic="${topic}"} 6`);

  // After a rebalance this pod reports only what it owns.
  assigned = [0];
  await monitor.refresh();
  text = await metrics.registry.metrics();
  expect(text).not.toContain(`partition="1"`);
  expect(text).toContain(`kafka_consumer_lag_sum{topic="${topic}"} 3`);
  expect(monitor.last().partitions).toHaveLength(1);
  await monitor.stop();
}, 30_000);

test("a partition whose committed offset does not move while messages wait is reported stalled, with the reason, whatever it is", async () => {
  const stalledTopic = `${topic}-stalled`;
  await ensureTopics(kafka, stalledTopic, { partitions: 1 });
  const producer = kafka.producer();
  await producer.connect();
  await producer.send({
    topic: stalledTopic,
    messages: Array.from({ length: 5 }, () => ({ partition: 0, value: "a" })),
  });
  await producer.disconnect();
  const admin = kafka.admin();
  await admin.connect();
  const commit = (offset: string) =>
    admin.setOffsets({ groupId, topic: stalledTopic, partitions: [{ partition: 0, offset }] });
  await commit("2");
  const metrics = createMetrics({ defaultMetrics: false });
  let now = 1_000_000;
  let reason = "dlq-unavailable";
  const monitor = createLagMonitor({
    kafka,
    topic: stalledTopic,
    groupId,
    metrics,
    logger,
    partitions: () => [0],
    reasonOf: () => reason,
    now: () => now,
  });
  const stalled = async () =>
    (await metrics.partitionStalledSeconds.get()).values.map((v) => [v.labels.reason, v.value]);
  try {
    await monitor.refresh();
    expect(await stalled()).toEqual([["dlq-unavailable", 0]]);
    now += 600_000;
    await monitor.refresh();
    expect(await stalled()).toEqual([["dlq-unavailable", 600]]);
    // The reason may change; the time counts from the last progress, not from the reason.
    reason = "in-flight";
    now += 60_000;
    await monitor.refresh();
    expect(await stalled()).toEqual([["in-flight", 660]]);
    // Progress (the committed offset moved) starts the count again.
    await commit("3");
    now += 60_000;
    await monitor.refresh();
    expect(await stalled()).toEqual([["in-flight", 0]]);
    now += 30_000;
    await monitor.refresh();
    expect(await stalled()).toEqual([["in-flight", 30]]);
    // Nothing waiting: not stalled, whatever the consumer last said.
    await commit("5");
    now += 600_000;
    await monitor.refresh();
    expect(await stalled()).toEqual([["none", 0]]);
  } finally {
    await monitor.stop();
    await admin.deleteTopics({ topics: [stalledTopic, dlqTopicOf(stalledTopic)] }).catch(() => {});
    await admin.disconnect();
  }
}, 30_000);

test("refuses an interval under a second", () => {
  expect(() =>
    createLagMonitor({
      kafka,
      topic,
      groupId,
      metrics: createMetrics({ defaultMetrics: false }),
      logger,
      partitions: () => [],
      intervalMs: 10,
    }),
  ).toThrow(/LAG_INTERVAL_MS/);
});
