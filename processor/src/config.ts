/**
 * Processor configuration, parsed once from the environment. Every invalid variable is
 * reported at once, each by name; values are never echoed.
 */
import { readFileSync } from "node:fs";
import { z } from "zod";
import {
  type Env,
  envBoolean,
  envLogLevel,
  envPort,
  envPositiveInt,
  parseEnv,
  splitList,
} from "../../core/env.ts";
import {
  checkKafkaEnv,
  type KafkaSettings,
  kafkaEnvShape,
  kafkaSettingsFrom,
} from "../../core/kafka.ts";
import type { LogLevel } from "../../core/log.ts";
import {
  checkTracingEnv,
  type TracingSettings,
  tracingEnvShape,
  tracingSettingsFrom,
} from "../../core/tracing.ts";
import type { ChannelPlugin } from "./channels/channel.ts";
import {
  CHANNEL_NAMES,
  CHANNEL_PLUGINS,
  type ChannelName,
  type ChannelSettings,
} from "./channels/index.ts";
import { ConfigError } from "./errors.ts";
import { createRouter, parseRoutingRules, type RoutingRules } from "./routing.ts";
import { runtime } from "./runtime.ts";

/** Everything the processor reads from its environment. */
export interface ProcessorConfig {
  kafka: KafkaSettings;
  groupId: string;
  /** Create the topic and its DLQ at start-up when missing (needs CreateTopic rights). */
  createTopics: boolean;
  host: string;
  port: number;
  channels: ChannelName[];
  /** Every channel's settings, as its plugin read them (channels/<name>/index.ts). */
  channelSettings: ChannelSettings;
  /** Folder with slack/ and email/ templates. */
  templatesDir?: string;
  /** Attempts per channel for retriable errors, first attempt included. */
  maxAttempts: number;
  retryBaseMs: number;
  retryMaxMs: number;
  /** Failed attempts in a row after which a channel counts as down (deferral, not DLQ). */
  breakerThreshold: number;
  /** How long SIGTERM waits for in-flight work before giving up. */
  shutdownTimeoutMs: number;
  /** Kafka consumer session timeout: how soon a dead processor's partitions move. */
  sessionTimeoutMs: number;
  /** Messages of one batch handled at once (different keys). */
  concurrency: number;
  /** Partitions handled at once. */
  partitionsConcurrency: number;
  pauseMinMs: number;
  pauseMaxMs: number;
  /** Commit resolved offsets (after writing their delivery records) at most this often. */
  commitIntervalMs: number;
  /** How often consumer lag is read from Kafka for the lag gauges. */
  lagIntervalMs: number;
  /** /healthz fails when the event loop has not ticked for this long. */
  livenessStallMs: number;
  /** Redis URL; unset → in-memory idempotency (one process, lost on restart). */
  redisUrl?: string;
  claimTtlMs: number;
  doneTtlMs: number;
  /** After a crash, this worker's claims are taken over this long after its last heartbeat. */
  ownerTtlMs: number;
  /** Deliver without idempotency while Redis is unreachable. */
  idempotencyFailOpen: boolean;
  /** Keys the in-memory store (no REDIS_URL) keeps at most; the oldest go first. */
  memoryMaxKeys: number;
  /** MySQL URL; unset → SQLite file at sqlitePath. */
  mysqlUrl?: string;
  sqlitePath: string;
  routing?: RoutingRules;
  logLevel: LogLevel;
  /** OpenTelemetry (the standard OTEL_* variables); exports only with an OTLP endpoint. */
  tracing: TracingSettings;
}

const plugins = Object.values(CHANNEL_PLUGINS) as ChannelPlugin<unknown>[];

/** The default channels. */
const DEFAULT_CHANNELS = "slack,email";

const schema = z.object({
  ...kafkaEnvShape,
  ...tracingEnvShape,
  KAFKA_GROUP_ID: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,200}$/, "expected a consumer group id ([A-Za-z0-9._-])")
    .default("fanda-processor"),
  KAFKA_CREATE_TOPICS: envBoolean(false),
  HOST: z.string().default("0.0.0.0"),
  PORT: envPort(8080),
  ENABLED_CHANNELS: z
    .string()
    .default(DEFAULT_CHANNELS)
    .transform((s, ctx) => {
      const names = splitList(s.toLowerCase());
      if (names.length === 0) ctx.addIssue({ code: "custom", message: "no channel given" });
      const unknown = names.filter((n) => !(CHANNEL_NAMES as string[]).includes(n));
      if (unknown.length > 0) {
        ctx.addIssue({
          code: "custom",
          message: `unknown channel(s) ${unknown.join(", ")}; available: ${CHANNEL_NAMES.join(", ")}`,
        });
      }
      return [...new Set(names)] as ChannelName[];
    }),
  TEMPLATES_DIR: z.string().optional(),
  DELIVERY_MAX_ATTEMPTS: envPositiveInt("DELIVERY_MAX_ATTEMPTS", 5, 100),
  RETRY_BASE_MS: envPositiveInt("RETRY_BASE_MS", 200),
  RETRY_MAX_MS: envPositiveInt("RETRY_MAX_MS", 30_000),
  BREAKER_THRESHOLD: envPositiveInt("BREAKER_THRESHOLD", 10, 10_000),
  SHUTDOWN_TIMEOUT_MS: envPositiveInt("SHUTDOWN_TIMEOUT_MS", 25_000),
  KAFKA_SESSION_TIMEOUT_MS: z.coerce
    .number({ error: "expected a whole number of ms" })
    .int("expected a whole number of ms")
    .min(6000, "expected at least 6000 (the broker's group.min.session.timeout.ms)")
    .max(300_000, "expected at most 300000 (the broker's group.max.session.timeout.ms)")
    .default(30_000),
  PROCESSOR_CONCURRENCY: envPositiveInt("PROCESSOR_CONCURRENCY", 32, 10_000),
  PARTITIONS_CONCURRENCY: envPositiveInt("PARTITIONS_CONCURRENCY", 3, 1000),
  PAUSE_MIN_MS: envPositiveInt("PAUSE_MIN_MS", 1000),
  COMMIT_INTERVAL_MS: envPositiveInt("COMMIT_INTERVAL_MS", 1000, 60_000),
  LAG_INTERVAL_MS: z.coerce
    .number({ error: "expected a whole number of ms" })
    .int("expected a whole number of ms")
    .min(1000, "expected at least 1000")
    .max(600_000, "expected at most 600000")
    .default(15_000),
  LIVENESS_STALL_MS: z.coerce
    .number({ error: "expected a whole number of ms" })
    .int("expected a whole number of ms")
    .min(2000, "expected at least 2000")
    .max(600_000, "expected at most 600000")
    .default(30_000),
  PAUSE_MAX_MS: envPositiveInt("PAUSE_MAX_MS", 30_000),
  REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\/\S+$/, "expected redis://host:port or rediss://user:password@host:port")
    .optional(),
  IDEMPOTENCY_CLAIM_TTL_MS: envPositiveInt("IDEMPOTENCY_CLAIM_TTL_MS", 120_000, 86_400_000),
  IDEMPOTENCY_DONE_TTL_MS: envPositiveInt(
    "IDEMPOTENCY_DONE_TTL_MS",
    7 * 86_400_000,
    90 * 86_400_000,
  ),
  IDEMPOTENCY_OWNER_TTL_MS: envPositiveInt("IDEMPOTENCY_OWNER_TTL_MS", 15_000, 3_600_000).refine(
    (v) => v >= 1000,
    "expected at least 1000",
  ),
  IDEMPOTENCY_FAIL_OPEN: envBoolean(false),
  IDEMPOTENCY_MEMORY_MAX_KEYS: envPositiveInt("IDEMPOTENCY_MEMORY_MAX_KEYS", 100_000, 100_000_000),
  IDEMPOTENCY_IN_MEMORY: envBoolean(false),
  MYSQL_URL: z
    .string()
    .regex(/^mysql:\/\/\S+\/[^/\s]+$/, "expected mysql://user:password@host:port/database")
    .optional(),
  AUDIT_SQLITE_PATH: z.string().default("fanda-deliveries.sqlite"),
  ROUTING_RULES: z.string().optional(),
  ROUTING_FILE: z.string().optional(),
  LOG_LEVEL: envLogLevel,
});

/** The processor's variables plus each channel's own (SLACK_*, SES_*, WEBHOOK_*), from its plugin. */
const fullSchema = schema.extend(Object.assign({}, ...plugins.map((p) => p.env)));

function checkProcessorEnv(raw: Env): string[] {
  const issues: string[] = [];
  const channels = splitList((raw.ENABLED_CHANNELS ?? DEFAULT_CHANNELS).toLowerCase());
  for (const p of plugins) issues.push(...p.check(raw, channels.includes(p.name)));
  const base = Number(raw.RETRY_BASE_MS ?? 200);
  const max = Number(raw.RETRY_MAX_MS ?? 30_000);
  if (Number.isFinite(base) && Number.isFinite(max) && max < base) {
    issues.push("RETRY_MAX_MS: must be >= RETRY_BASE_MS");
  }
  const pauseMin = Number(raw.PAUSE_MIN_MS ?? 1000);
  const pauseMax = Number(raw.PAUSE_MAX_MS ?? 30_000);
  if (Number.isFinite(pauseMin) && Number.isFinite(pauseMax) && pauseMax < pauseMin) {
    issues.push("PAUSE_MAX_MS: must be >= PAUSE_MIN_MS");
  }
  const claim = Number(raw.IDEMPOTENCY_CLAIM_TTL_MS ?? 120_000);
  const done = Number(raw.IDEMPOTENCY_DONE_TTL_MS ?? 7 * 86_400_000);
  if (Number.isFinite(claim) && Number.isFinite(done) && done < claim) {
    issues.push("IDEMPOTENCY_DONE_TTL_MS: must be >= IDEMPOTENCY_CLAIM_TTL_MS");
  }
  // Kubernetes sets KUBERNETES_SERVICE_HOST in every pod: there, and under NODE_ENV=production,
  // an in-memory store (one pod's memory, lost on restart) is a mistake unless asked for.
  const deployed = Boolean(raw.KUBERNETES_SERVICE_HOST) || raw.NODE_ENV === "production";
  if (
    deployed &&
    !raw.REDIS_URL &&
    !["true", "1", "yes"].includes(raw.IDEMPOTENCY_IN_MEMORY ?? "")
  ) {
    issues.push(
      "REDIS_URL: required in Kubernetes or with NODE_ENV=production (the in-memory idempotency store is per process and forgets on restart); set IDEMPOTENCY_IN_MEMORY=true to run in memory anyway",
    );
  }
  if (raw.ROUTING_RULES && raw.ROUTING_FILE) {
    issues.push("ROUTING_FILE: set either ROUTING_RULES or ROUTING_FILE, not both");
  }
  if (!raw.MYSQL_URL && runtime === "node") {
    issues.push("MYSQL_URL: is required on Node (the embedded SQLite delivery log needs Bun)");
  }
  return issues;
}

/** Routing targets, checked by the plugin of each channel they are for. */
function checkRoutingTargets(rules: RoutingRules) {
  const issues: string[] = [];
  const routes = [
    ...Object.entries(rules.categories),
    ...(rules.default ? [["default", rules.default] as const] : []),
  ];
  for (const [name, route] of routes) {
    for (const [channel, target] of Object.entries(route.targets)) {
      const plugin = Object.hasOwn(CHANNEL_PLUGINS, channel)
        ? (CHANNEL_PLUGINS[channel as ChannelName] as ChannelPlugin<unknown>)
        : undefined;
      if (plugin?.checkTarget) issues.push(...plugin.checkTarget(target, name));
    }
  }
  if (issues.length > 0) throw new ConfigError("processor", issues);
}

/** Reads ROUTING_RULES or the file ROUTING_FILE names, if either is set. */
function loadRouting(
  rules: string | undefined,
  file: string | undefined,
): RoutingRules | undefined {
  if (rules !== undefined) return parseRoutingRules(rules, "ROUTING_RULES");
  if (file === undefined) return undefined;
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new ConfigError("processor", [
      `ROUTING_FILE: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? "error"})`,
    ]);
  }
  return parseRoutingRules(text, `ROUTING_FILE ${file}`);
}

/**
 * Reads the processor's configuration.
 * @throws ConfigError naming every invalid variable
 */
export function loadProcessorConfig(env: Env = process.env): ProcessorConfig {
  // Typed by the processor's own schema; the channels' variables are read by their plugins.
  const e = parseEnv(fullSchema, env, "processor", [
    checkKafkaEnv,
    checkTracingEnv,
    checkProcessorEnv,
  ]) as z.output<typeof schema> & Record<string, unknown>;
  const routing = loadRouting(e.ROUTING_RULES, e.ROUTING_FILE);
  if (routing) {
    createRouter({ enabled: e.ENABLED_CHANNELS, rules: routing });
    checkRoutingTargets(routing);
  }
  return {
    kafka: kafkaSettingsFrom(e),
    groupId: e.KAFKA_GROUP_ID,
    createTopics: e.KAFKA_CREATE_TOPICS,
    host: e.HOST,
    port: e.PORT,
    channels: e.ENABLED_CHANNELS,
    channelSettings: Object.fromEntries(
      e.ENABLED_CHANNELS.map((name) => [
        name,
        (CHANNEL_PLUGINS[name] as ChannelPlugin<unknown>).settings(e),
      ]),
    ) as ChannelSettings,
    ...(e.TEMPLATES_DIR ? { templatesDir: e.TEMPLATES_DIR } : {}),
    maxAttempts: e.DELIVERY_MAX_ATTEMPTS,
    retryBaseMs: e.RETRY_BASE_MS,
    retryMaxMs: e.RETRY_MAX_MS,
    breakerThreshold: e.BREAKER_THRESHOLD,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    sessionTimeoutMs: e.KAFKA_SESSION_TIMEOUT_MS,
    concurrency: e.PROCESSOR_CONCURRENCY,
    partitionsConcurrency: e.PARTITIONS_CONCURRENCY,
    pauseMinMs: e.PAUSE_MIN_MS,
    pauseMaxMs: e.PAUSE_MAX_MS,
    commitIntervalMs: e.COMMIT_INTERVAL_MS,
    lagIntervalMs: e.LAG_INTERVAL_MS,
    livenessStallMs: e.LIVENESS_STALL_MS,
    ...(e.REDIS_URL ? { redisUrl: e.REDIS_URL } : {}),
    claimTtlMs: e.IDEMPOTENCY_CLAIM_TTL_MS,
    doneTtlMs: e.IDEMPOTENCY_DONE_TTL_MS,
    ownerTtlMs: e.IDEMPOTENCY_OWNER_TTL_MS,
    idempotencyFailOpen: e.IDEMPOTENCY_FAIL_OPEN,
    memoryMaxKeys: e.IDEMPOTENCY_MEMORY_MAX_KEYS,
    ...(e.MYSQL_URL ? { mysqlUrl: e.MYSQL_URL } : {}),
    sqlitePath: e.AUDIT_SQLITE_PATH,
    ...(routing ? { routing } : {}),
    logLevel: e.LOG_LEVEL,
    tracing: tracingSettingsFrom(e, "fanda-processor"),
  };
}
