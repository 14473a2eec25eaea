/**
 * Processor configuration, parsed once from the environment. Every invalid variable is
 * reported at once, each by name; values are never echoed.
 */
import { z } from "zod";
import {
  type Env,
  envBoolean,
  envLogLevel,
  envPort,
  envUrl,
  parseEnv,
  splitList,
} from "../../producer/src/env.ts";
import {
  checkKafkaEnv,
  type KafkaSettings,
  kafkaEnvShape,
  kafkaSettingsFrom,
} from "../../producer/src/kafka.ts";
import type { LogLevel } from "../../producer/src/log.ts";
import { CHANNEL_NAMES, type ChannelName } from "./channels/index.ts";

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
  /** Attempts per channel for retriable errors, first attempt included. */
  maxAttempts: number;
  retryBaseMs: number;
  retryMaxMs: number;
  /** How long SIGTERM waits for in-flight work before giving up. */
  shutdownTimeoutMs: number;
  logLevel: LogLevel;
}

const positiveInt = (name: string, def: number, max = 3_600_000) =>
  z.coerce
    .number({ error: `expected a whole number (${name})` })
    .int("expected a whole number")
    .min(1, "expected at least 1")
    .max(max, `expected at most ${max}`)
    .default(def);

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
    .default("log")
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
  DELIVERY_MAX_ATTEMPTS: positiveInt("DELIVERY_MAX_ATTEMPTS", 5, 100),
  RETRY_BASE_MS: positiveInt("RETRY_BASE_MS", 200),
  RETRY_MAX_MS: positiveInt("RETRY_MAX_MS", 30_000),
  SHUTDOWN_TIMEOUT_MS: positiveInt("SHUTDOWN_TIMEOUT_MS", 25_000),
  LOG_LEVEL: envLogLevel,
});

function checkProcessorEnv(raw: Env): string[] {
  const issues: string[] = [];
  const channels = (raw.ENABLED_CHANNELS ?? "")
    .toLowerCase()
    .split(",")
    .map((c) => c.trim());
  if (channels.includes("webhook") && !raw.WEBHOOK_URL) {
    issues.push("WEBHOOK_URL: is required when ENABLED_CHANNELS includes webhook");
  }
  const base = Number(raw.RETRY_BASE_MS ?? 200);
  const max = Number(raw.RETRY_MAX_MS ?? 30_000);
  if (Number.isFinite(base) && Number.isFinite(max) && max < base) {
    issues.push("RETRY_MAX_MS: must be >= RETRY_BASE_MS");
  }
  return issues;
}

/**
 * Reads the processor's configuration.
 * @throws ConfigError naming every invalid variable
 */
export function loadProcessorConfig(env: Env = process.env): ProcessorConfig {
  const e = parseEnv(schema, env, "processor", [checkKafkaEnv, checkProcessorEnv]);
  return {
    kafka: kafkaSettingsFrom(e),
    groupId: e.KAFKA_GROUP_ID,
    createTopics: e.KAFKA_CREATE_TOPICS,
    host: e.HOST,
    port: e.PORT,
    channels: e.ENABLED_CHANNELS,
    ...(e.WEBHOOK_URL ? { webhookUrl: e.WEBHOOK_URL } : {}),
    webhookTimeoutMs: e.WEBHOOK_TIMEOUT_MS,
    maxAttempts: e.DELIVERY_MAX_ATTEMPTS,
    retryBaseMs: e.RETRY_BASE_MS,
    retryMaxMs: e.RETRY_MAX_MS,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    logLevel: e.LOG_LEVEL,
  };
}
