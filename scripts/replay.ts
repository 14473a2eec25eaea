/**
 * Replays dead letters (default) or failed deliveries from the delivery log through the main
 * topic. Idempotent per (event, channel), even past the idempotency TTL: dead letters whose
 * failed channels have a delivered row in the delivery log are not replayed, and the
 * processor (its claims backed by the same log) sends only channels without one.
 *
 *   bun run replay [--from dlq|log] [--reason R[,R]] [--event-id ID] [--since ISO] [--until ISO]
 *                  [--limit N] [--dry-run]
 *
 * Reads the same environment as the processor (KAFKA_*, MYSQL_URL or AUDIT_SQLITE_PATH).
 * Reasons: delivery-failed, unknown-schema-version, processing-error, invalid-message (all but the
 * last by default).
 */
import { parseArgs } from "node:util";
import { createKafka, createPublisher } from "../core/kafka.ts";
import { createLogger } from "../core/log.ts";
import { loadProcessorConfig } from "../processor/src/config.ts";
import { createMysqlLog, createSqliteLog } from "../processor/src/delivery-log/index.ts";
import type { DeadLetterReason } from "../processor/src/dlq.ts";
import { ConfigError } from "../processor/src/errors.ts";
import { replayDlq, replayLog } from "../processor/src/replay.ts";

const REASONS: DeadLetterReason[] = [
  "delivery-failed",
  "unknown-schema-version",
  "processing-error",
  "invalid-message",
];

function fail(message: string): never {
  console.error(message);
  process.exit(2);
}

const { values } = parseArgs({
  options: {
    from: { type: "string", default: "dlq" },
    reason: { type: "string" },
    "event-id": { type: "string" },
    since: { type: "string" },
    until: { type: "string" },
    limit: { type: "string" },
    "dry-run": { type: "boolean", default: false },
  },
});
const date = (name: string, v: string | undefined) => {
  if (v === undefined) return undefined;
  const d = new Date(v);
  if (Number.isNaN(d.getTime())) fail(`--${name}: expected an ISO 8601 time, got ${v}`);
  return d;
};
if (values.from !== "dlq" && values.from !== "log")
  fail(`--from: expected dlq or log, got ${values.from}`);
const reasons = values.reason?.split(",").map((r) => r.trim()) as DeadLetterReason[] | undefined;
for (const r of reasons ?? []) {
  if (!REASONS.includes(r))
    fail(`--reason: unknown reason ${r}; expected one of ${REASONS.join(", ")}`);
}
const limit = values.limit === undefined ? undefined : Number(values.limit);
if (limit !== undefined && (!Number.isInteger(limit) || limit < 1))
  fail(`--limit: expected a positive integer`);
if (values.from === "log" && (values.reason || values.until))
  fail("--reason and --until apply to --from dlq only");
const since = date("since", values.since);
const until = date("until", values.until);

let config: ReturnType<typeof loadProcessorConfig>;
try {
  config = loadProcessorConfig();
} catch (err) {
  fail(err instanceof ConfigError ? err.message : String(err));
}
const logger = createLogger({ level: config.logLevel, ns: "fanda.replay" });
const kafka = createKafka(config.kafka, { logger });
const publisher = createPublisher({ kafka, topic: config.kafka.topic });
await publisher.connect();
// Replay asks the delivery log which (event, channel) have delivered since, for both sources.
const deliveryLog = config.mysqlUrl
  ? createMysqlLog({ url: config.mysqlUrl })
  : createSqliteLog({ path: config.sqlitePath });
try {
  const report =
    values.from === "dlq"
      ? await replayDlq({
          kafka,
          topic: config.kafka.topic,
          publisher,
          logger,
          deliveryLog,
          dryRun: values["dry-run"],
          filter: {
            ...(reasons ? { reasons } : {}),
            ...(values["event-id"] ? { eventId: values["event-id"] } : {}),
            ...(since ? { since } : {}),
            ...(until ? { until } : {}),
            ...(limit ? { limit } : {}),
          },
        })
      : await replayLog({
          deliveryLog,
          publisher,
          logger,
          dryRun: values["dry-run"],
          filter: {
            ...(values["event-id"] ? { eventId: values["event-id"] } : {}),
            ...(since ? { since } : {}),
            ...(limit ? { limit } : {}),
          },
        });
  console.log(
    `${values["dry-run"] ? "would replay" : "replayed"} ${values["dry-run"] ? report.eventIds.length : report.replayed} of ${report.scanned} scanned (${report.skipped} skipped, ${report.alreadyDelivered} of them delivered since)`,
  );
} finally {
  await deliveryLog.close().catch(() => {});
  await publisher.disconnect();
}
process.exit(0);
