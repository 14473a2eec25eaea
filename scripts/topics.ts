/**
 * Waits until the broker answers a metadata request, then creates the notification topic
 * and its dead-letter topic if they are missing (idempotent).
 *
 *   bun scripts/topics.ts [--wait SECONDS] [--partitions N]
 *
 * Reads KAFKA_BROKERS, KAFKA_AUTH, KAFKA_TOPIC like every other entry point.
 */
import { parseArgs } from "node:util";
import { logLevel } from "kafkajs";
import { z } from "zod";
import { parseEnv } from "../core/env.ts";
import {
  checkKafkaEnv,
  createKafka,
  ensureTopics,
  kafkaEnvShape,
  kafkaSettingsFrom,
} from "../core/kafka.ts";
import { createLogger } from "../core/log.ts";

const { values } = parseArgs({
  options: {
    wait: { type: "string", default: "60" },
    partitions: { type: "string", default: "6" },
  },
});
const waitSeconds = Number(values.wait);
const partitions = Number(values.partitions);
if (!Number.isFinite(waitSeconds) || waitSeconds <= 0) {
  console.error(`--wait: expected a positive number of seconds, got ${values.wait}`);
  process.exit(2);
}
if (!Number.isInteger(partitions) || partitions < 1) {
  console.error(`--partitions: expected a positive integer, got ${values.partitions}`);
  process.exit(2);
}

const env = parseEnv(z.object(kafkaEnvShape), process.env, "topics", [checkKafkaEnv]);
const settings = kafkaSettingsFrom(env);
const logger = createLogger({ ns: "fanda.topics" });
// Quiet client: refused connections while the broker boots are expected, not news.
const kafka = createKafka(settings, {
  logger,
  logLevel: logLevel.NOTHING,
  overrides: { connectionTimeout: 2000, requestTimeout: 5000, retry: { retries: 0 } },
});

const deadline = Date.now() + waitSeconds * 1000;
let lastError: unknown;
for (;;) {
  const admin = kafka.admin();
  try {
    await admin.connect();
    const cluster = await admin.describeCluster();
    await admin.disconnect();
    logger.info("broker answers", {
      brokers: cluster.brokers.length,
      controller: cluster.controller,
    });
    break;
  } catch (err) {
    lastError = err;
    await admin.disconnect().catch(() => {});
  }
  if (Date.now() > deadline) {
    console.error(
      `kafka at ${settings.brokers.join(",")} did not answer a metadata request within ${waitSeconds}s: ${String(lastError)}`,
    );
    process.exit(1);
  }
  await Bun.sleep(500);
}

const created = await ensureTopics(kafka, settings.topic, { partitions });
logger.info(created.length > 0 ? "topics created" : "topics already exist", {
  topic: settings.topic,
  created,
});
