/**
 * Producer configuration (local ingest and Lambda), parsed once from the environment.
 */
import { z } from "zod";
import { type Env, envBoolean, envLogLevel, envPort, parseEnv } from "../../core/env.ts";
import { ConfigError } from "../../core/errors.ts";
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
import { type CategoryRule, DEFAULT_CATEGORY_RULES, parseCategoryRules } from "./category.ts";

/** Everything the producer reads from its environment. */
export interface ProducerConfig {
  kafka: KafkaSettings;
  port: number;
  categoryRules: readonly CategoryRule[];
  notifyOnRemoved: boolean;
  logLevel: LogLevel;
  /** OpenTelemetry (the standard OTEL_* variables); exports only with an OTLP endpoint. */
  tracing: TracingSettings;
}

const schema = z.object({
  ...kafkaEnvShape,
  PRODUCER_PORT: envPort(8081),
  CATEGORY_RULES: z.string().optional(),
  NOTIFY_ON_REMOVED: envBoolean(false),
  LOG_LEVEL: envLogLevel,
  ...tracingEnvShape,
});

/**
 * Reads the producer's configuration.
 * @throws ConfigError naming every invalid variable
 */
export function loadProducerConfig(env: Env = process.env): ProducerConfig {
  const e = parseEnv(schema, env, "producer", [checkKafkaEnv, checkTracingEnv]);
  let categoryRules: readonly CategoryRule[] = DEFAULT_CATEGORY_RULES;
  if (e.CATEGORY_RULES !== undefined) {
    try {
      categoryRules = parseCategoryRules(e.CATEGORY_RULES);
    } catch (err) {
      if (err instanceof ConfigError) throw new ConfigError("producer", err.issues);
      throw err;
    }
  }
  return {
    kafka: kafkaSettingsFrom(e),
    port: e.PRODUCER_PORT,
    categoryRules,
    notifyOnRemoved: e.NOTIFY_ON_REMOVED,
    logLevel: e.LOG_LEVEL,
    tracing: tracingSettingsFrom(e, "fanda-producer"),
  };
}
