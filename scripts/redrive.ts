/**
 * Re-sends the S3 events the producer Lambda gave up on, from its on-failure SQS queue
 * (runbook: docs/runbooks/lambda-redrive.md).
 *
 *   bun scripts/redrive.ts --queue-url <url> [--to lambda|kafka] [--function <name>] [--max N]
 *                          [--visibility-timeout S] [--dry-run]
 *
 * `--to lambda` (default) invokes the producer function synchronously with each original event;
 * `--to kafka` publishes with the producer's own code and reads its environment (KAFKA_*,
 * CATEGORY_RULES), for use inside the VPC. Both need AWS_REGION and credentials for the queue
 * (sqs:ReceiveMessage, sqs:DeleteMessage, sqs:ChangeMessageVisibility) and, for `lambda`,
 * lambda:InvokeFunction. NOTIFY_ON_REMOVED and LOG_LEVEL are read as the producer reads them.
 *
 * Exit status: 0 when every message handled was redriven or skipped, 1 when some were not (or
 * the queue could not be read), 2 for bad options or environment.
 */
import { parseArgs } from "node:util";
import { LambdaClient } from "@aws-sdk/client-lambda";
import { SQSClient } from "@aws-sdk/client-sqs";
import { z } from "zod";
import { type Env, envBoolean, envLogLevel, parseEnv } from "../core/env.ts";
import { ConfigError } from "../core/errors.ts";
import { createKafka, createPublisher, type Publisher } from "../core/kafka.ts";
import { createLogger, type LogSink } from "../core/log.ts";
import { createCategorizer } from "../producer/src/category.ts";
import { loadProducerConfig } from "../producer/src/config.ts";
import {
  createKafkaTarget,
  createLambdaTarget,
  createRedrive,
  createSqsQueue,
  type FailureQueue,
  type RedriveTarget,
} from "../producer/src/redrive.ts";

/** What {@link main} reads besides its arguments; the defaults are the process's. */
export interface RedriveCliDeps {
  env?: Env;
  /** Replaces the SQS queue (tests: an in-memory queue). */
  queue?: FailureQueue;
  /** Where JSON log lines go (default stdout/stderr). */
  logSink?: LogSink;
  /** Where usage errors and the summary go (default stderr / stdout). */
  stderr?: (line: string) => void;
  stdout?: (line: string) => void;
  signal?: AbortSignal;
}

class UsageError extends Error {}

const envSchema = z.object({
  AWS_REGION: z
    .string({ error: "is required (the queue's region, for the AWS SDK)" })
    .regex(/^[a-z]{2}(-[a-z]+)+-\d$/, "expected an AWS region such as ap-northeast-2"),
  NOTIFY_ON_REMOVED: envBoolean(false),
  LOG_LEVEL: envLogLevel,
});

function options(argv: string[]) {
  let values: ReturnType<typeof parse>["values"];
  function parse() {
    return parseArgs({
      args: argv,
      allowPositionals: false,
      strict: true,
      options: {
        "queue-url": { type: "string" },
        to: { type: "string", default: "lambda" },
        function: { type: "string" },
        max: { type: "string" },
        "visibility-timeout": { type: "string" },
        "dry-run": { type: "boolean", default: false },
      },
    });
  }
  try {
    values = parse().values;
  } catch (err) {
    // node:util names the option in its message ("Unknown option '--nope'", …).
    throw new UsageError((err as Error).message);
  }
  const queueUrl = values["queue-url"];
  if (!queueUrl)
    throw new UsageError("--queue-url: required (the stack output producerFailureQueueUrl)");
  if (!URL.canParse(queueUrl) || !/^https?:\/\/[^/]+\/.+/.test(queueUrl)) {
    throw new UsageError(
      `--queue-url: expected an SQS queue URL such as https://sqs.<region>.amazonaws.com/<account>/<queue>, got ${queueUrl}`,
    );
  }
  const to = values.to;
  if (to !== "lambda" && to !== "kafka") {
    throw new UsageError(`--to: expected lambda or kafka, got ${to}`);
  }
  if (to === "lambda" && !values.function) {
    throw new UsageError(
      "--function: required with --to lambda (the stack output producerFunction)",
    );
  }
  if (to === "kafka" && values.function) throw new UsageError("--function: only with --to lambda");
  const int = (name: string, v: string | undefined, min: number, max: number) => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!/^\d+$/.test(v) || n < min || n > max) {
      throw new UsageError(`--${name}: expected an integer ${min}-${max}, got ${v}`);
    }
    return n;
  };
  return {
    queueUrl,
    to,
    functionName: values.function,
    max: int("max", values.max, 1, Number.MAX_SAFE_INTEGER),
    visibilityTimeoutSeconds: int("visibility-timeout", values["visibility-timeout"], 1, 43_200),
    dryRun: values["dry-run"] ?? false,
  } as const;
}

/**
 * Runs the redrive command.
 * @returns the exit status (see the module comment)
 */
export async function main(argv: string[], deps: RedriveCliDeps = {}): Promise<number> {
  const env = deps.env ?? process.env;
  const stderr = deps.stderr ?? ((line: string) => process.stderr.write(`${line}\n`));
  const stdout = deps.stdout ?? ((line: string) => process.stdout.write(`${line}\n`));

  let opts: ReturnType<typeof options>;
  let settings: z.output<typeof envSchema>;
  let kafkaConfig: ReturnType<typeof loadProducerConfig> | undefined;
  try {
    opts = options(argv);
    settings = parseEnv(envSchema, env, "redrive");
    if (opts.to === "kafka") kafkaConfig = loadProducerConfig(env);
  } catch (err) {
    if (err instanceof UsageError || err instanceof ConfigError) {
      stderr(err.message);
      return 2;
    }
    throw err;
  }

  const logger = createLogger({
    level: settings.LOG_LEVEL,
    ns: "fanda",
    ...(deps.logSink ? { sink: deps.logSink } : {}),
  });
  const queue =
    deps.queue ??
    createSqsQueue({
      client: new SQSClient({ region: settings.AWS_REGION }),
      queueUrl: opts.queueUrl,
    });

  let target: RedriveTarget;
  let publisher: Publisher | undefined;
  if (kafkaConfig) {
    publisher = createPublisher({
      kafka: createKafka(kafkaConfig.kafka, { logger }),
      topic: kafkaConfig.kafka.topic,
    });
    target = createKafkaTarget({
      topic: kafkaConfig.kafka.topic,
      runtime: {
        publisher,
        categorize: createCategorizer({ rules: kafkaConfig.categoryRules }),
        notifyOnRemoved: kafkaConfig.notifyOnRemoved,
        logger,
      },
    });
  } else {
    target = createLambdaTarget({
      client: new LambdaClient({ region: settings.AWS_REGION }),
      functionName: opts.functionName ?? "",
    });
  }

  try {
    // A dry run touches nothing, Kafka included.
    if (publisher && !opts.dryRun) await publisher.connect();
    const report = await createRedrive({
      queue,
      target,
      logger,
      dryRun: opts.dryRun,
      notifyOnRemoved: kafkaConfig?.notifyOnRemoved ?? settings.NOTIFY_ON_REMOVED,
      ...(opts.max ? { max: opts.max } : {}),
      ...(opts.visibilityTimeoutSeconds
        ? { visibilityTimeoutSeconds: opts.visibilityTimeoutSeconds }
        : {}),
      ...(deps.signal ? { signal: deps.signal } : {}),
    }).run();
    stdout(
      `${opts.dryRun ? "would redrive" : "redriven"} ${report.redriven} of ${report.received} message(s) to ${report.target}: ${report.failed} failed, ${report.skipped} skipped (left in the queue); stopped: ${report.stopped}`,
    );
    return report.failed > 0 ? 1 : 0;
  } catch (err) {
    logger.child("redrive").error("redrive stopped", { err });
    return 1;
  } finally {
    await publisher?.disconnect().catch(() => {});
  }
}

if (import.meta.main) {
  const stop = new AbortController();
  process.once("SIGINT", () => stop.abort());
  process.exit(await main(process.argv.slice(2), { signal: stop.signal }));
}
