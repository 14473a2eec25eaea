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
  envUrl,
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
import { isEmailAddress } from "./channels/email.ts";
import {
  CHANNEL_NAMES,
  type ChannelName,
  type EmailSettings,
  type SlackSettings,
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
  webhookUrl?: string;
  webhookTimeoutMs: number;
  webhookSecret?: string;
  slack: SlackSettings & Required<Pick<SlackSettings, "digest" | "digestMax">>;
  email: EmailSettings;
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
  /** MySQL URL; unset → SQLite file at sqlitePath. */
  mysqlUrl?: string;
  sqlitePath: string;
  routing?: RoutingRules;
  logLevel: LogLevel;
}

const positiveInt = (name: string, def: number, max = 3_600_000) =>
  z.coerce
    .number({ error: `expected a whole number (${name})` })
    .int("expected a whole number")
    .min(1, "expected at least 1")
    .max(max, `expected at most ${max}`)
    .default(def);

/** The default channels. */
const DEFAULT_CHANNELS = "slack,email";

const schema = z.object({
  ...kafkaEnvShape,
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
  WEBHOOK_URL: envUrl().optional(),
  WEBHOOK_TIMEOUT_MS: positiveInt("WEBHOOK_TIMEOUT_MS", 5000, 120_000),
  WEBHOOK_SECRET: z.string().min(16, "expected at least 16 characters").optional(),
  SLACK_BOT_TOKEN: z
    .string()
    .regex(/^xox[a-z]-\S+$/, "expected a Slack bot token (xoxb-…)")
    .optional(),
  SLACK_API_URL: z
    .url({ protocol: /^https?$/, error: "expected an http(s) URL ending with /api/" })
    .refine((u) => u.endsWith("/"), "must end with / (e.g. https://slack.com/api/)")
    .optional(),
  SLACK_DEFAULT_CHANNEL: z
    .string()
    .regex(/^[#@]?[\w.-]{1,80}$/, "expected a channel name or id")
    .optional(),
  SLACK_RATE_PER_SECOND: z.coerce
    .number({ error: "expected a number" })
    .positive("expected > 0")
    .max(10_000, "expected at most 10000")
    .default(1),
  SLACK_BURST: positiveInt("SLACK_BURST", 3, 10_000),
  SLACK_DIGEST: envBoolean(true),
  SLACK_DIGEST_MAX: positiveInt("SLACK_DIGEST_MAX", 100, 1000).refine(
    (v) => v >= 2,
    "expected at least 2",
  ),
  SES_FROM: z.string().optional(),
  EMAIL_TO: z.string().optional(),
  SES_CONFIGURATION_SET: z
    .string()
    .regex(/^[\w-]{1,64}$/, "expected a configuration set name")
    .optional(),
  SES_ENDPOINT: envUrl().optional(),
  SES_MAX_SEND_RATE: z.coerce
    .number({ error: "expected a number" })
    .positive("expected > 0")
    .optional(),
  TEMPLATES_DIR: z.string().optional(),
  DELIVERY_MAX_ATTEMPTS: positiveInt("DELIVERY_MAX_ATTEMPTS", 5, 100),
  RETRY_BASE_MS: positiveInt("RETRY_BASE_MS", 200),
  RETRY_MAX_MS: positiveInt("RETRY_MAX_MS", 30_000),
  BREAKER_THRESHOLD: positiveInt("BREAKER_THRESHOLD", 10, 10_000),
  SHUTDOWN_TIMEOUT_MS: positiveInt("SHUTDOWN_TIMEOUT_MS", 25_000),
  KAFKA_SESSION_TIMEOUT_MS: z.coerce
    .number({ error: "expected a whole number of ms" })
    .int("expected a whole number of ms")
    .min(6000, "expected at least 6000 (the broker's group.min.session.timeout.ms)")
    .max(300_000, "expected at most 300000 (the broker's group.max.session.timeout.ms)")
    .default(30_000),
  PROCESSOR_CONCURRENCY: positiveInt("PROCESSOR_CONCURRENCY", 32, 10_000),
  PARTITIONS_CONCURRENCY: positiveInt("PARTITIONS_CONCURRENCY", 3, 1000),
  PAUSE_MIN_MS: positiveInt("PAUSE_MIN_MS", 1000),
  COMMIT_INTERVAL_MS: positiveInt("COMMIT_INTERVAL_MS", 1000, 60_000),
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
  PAUSE_MAX_MS: positiveInt("PAUSE_MAX_MS", 30_000),
  REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\/\S+$/, "expected redis://host:port or rediss://user:password@host:port")
    .optional(),
  IDEMPOTENCY_CLAIM_TTL_MS: positiveInt("IDEMPOTENCY_CLAIM_TTL_MS", 120_000, 86_400_000),
  IDEMPOTENCY_DONE_TTL_MS: positiveInt("IDEMPOTENCY_DONE_TTL_MS", 7 * 86_400_000, 90 * 86_400_000),
  IDEMPOTENCY_OWNER_TTL_MS: positiveInt("IDEMPOTENCY_OWNER_TTL_MS", 15_000, 3_600_000).refine(
    (v) => v >= 1000,
    "expected at least 1000",
  ),
  IDEMPOTENCY_FAIL_OPEN: envBoolean(false),
  MYSQL_URL: z
    .string()
    .regex(/^mysql:\/\/\S+\/[^/\s]+$/, "expected mysql://user:password@host:port/database")
    .optional(),
  AUDIT_SQLITE_PATH: z.string().default("fanda-deliveries.sqlite"),
  ROUTING_RULES: z.string().optional(),
  ROUTING_FILE: z.string().optional(),
  LOG_LEVEL: envLogLevel,
});

function checkProcessorEnv(raw: Env): string[] {
  const issues: string[] = [];
  const channels = splitList((raw.ENABLED_CHANNELS ?? DEFAULT_CHANNELS).toLowerCase());
  if (channels.includes("webhook") && !raw.WEBHOOK_URL) {
    issues.push("WEBHOOK_URL: is required when ENABLED_CHANNELS includes webhook");
  }
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
  if (channels.includes("slack") && !raw.SLACK_BOT_TOKEN) {
    issues.push("SLACK_BOT_TOKEN: is required when ENABLED_CHANNELS includes slack");
  }
  if (channels.includes("email")) {
    if (!raw.SES_FROM) issues.push("SES_FROM: is required when ENABLED_CHANNELS includes email");
    if (!raw.AWS_REGION)
      issues.push("AWS_REGION: is required when ENABLED_CHANNELS includes email");
  }
  if (raw.SES_FROM && !isEmailAddress(raw.SES_FROM))
    issues.push("SES_FROM: expected an email address");
  for (const to of splitList(raw.EMAIL_TO ?? "")) {
    if (!isEmailAddress(to)) issues.push(`EMAIL_TO: ${JSON.stringify(to)} is not an email address`);
  }
  if (raw.ROUTING_RULES && raw.ROUTING_FILE) {
    issues.push("ROUTING_FILE: set either ROUTING_RULES or ROUTING_FILE, not both");
  }
  if (!raw.MYSQL_URL && runtime === "node") {
    issues.push("MYSQL_URL: is required on Node (the embedded SQLite delivery log needs Bun)");
  }
  return issues;
}

/** Routing targets the channels will read: email recipients must be addresses. */
function checkRoutingTargets(rules: RoutingRules) {
  const issues: string[] = [];
  const routes = [
    ...Object.entries(rules.categories),
    ...(rules.default ? [["default", rules.default] as const] : []),
  ];
  for (const [name, route] of routes) {
    const to = route.targets.email?.to;
    if (to === undefined) continue;
    if (!Array.isArray(to) || to.length === 0) {
      issues.push(`routing ${name}.targets.email.to: expected a non-empty list of addresses`);
    } else {
      for (const a of to) {
        if (typeof a !== "string" || !isEmailAddress(a)) {
          issues.push(
            `routing ${name}.targets.email.to: ${JSON.stringify(a)} is not an email address`,
          );
        }
      }
    }
    const channel = route.targets.slack?.channel;
    if (channel !== undefined && (typeof channel !== "string" || channel.length === 0)) {
      issues.push(`routing ${name}.targets.slack.channel: expected a channel name`);
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
  const e = parseEnv(schema, env, "processor", [checkKafkaEnv, checkProcessorEnv]);
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
    ...(e.WEBHOOK_URL ? { webhookUrl: e.WEBHOOK_URL } : {}),
    webhookTimeoutMs: e.WEBHOOK_TIMEOUT_MS,
    ...(e.WEBHOOK_SECRET ? { webhookSecret: e.WEBHOOK_SECRET } : {}),
    slack: {
      ratePerSecond: e.SLACK_RATE_PER_SECOND,
      burst: e.SLACK_BURST,
      digest: e.SLACK_DIGEST,
      digestMax: e.SLACK_DIGEST_MAX,
      ...(e.SLACK_BOT_TOKEN ? { token: e.SLACK_BOT_TOKEN } : {}),
      ...(e.SLACK_API_URL ? { apiUrl: e.SLACK_API_URL } : {}),
      ...(e.SLACK_DEFAULT_CHANNEL ? { defaultChannel: e.SLACK_DEFAULT_CHANNEL } : {}),
    },
    email: {
      defaultTo: splitList(e.EMAIL_TO ?? ""),
      ...(e.SES_FROM ? { from: e.SES_FROM } : {}),
      ...(e.SES_CONFIGURATION_SET ? { configurationSet: e.SES_CONFIGURATION_SET } : {}),
      ...(e.AWS_REGION ? { region: e.AWS_REGION } : {}),
      ...(e.SES_ENDPOINT ? { endpoint: e.SES_ENDPOINT } : {}),
      ...(e.SES_MAX_SEND_RATE ? { maxSendRate: e.SES_MAX_SEND_RATE } : {}),
    },
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
    ...(e.MYSQL_URL ? { mysqlUrl: e.MYSQL_URL } : {}),
    sqlitePath: e.AUDIT_SQLITE_PATH,
    ...(routing ? { routing } : {}),
    logLevel: e.LOG_LEVEL,
  };
}
