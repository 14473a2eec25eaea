/**
 * Kafka connectivity shared by producer and processor: settings from the environment,
 * the client factory for every auth mode (plaintext, MSK IAM, SCRAM, OAUTHBEARER),
 * topic creation, and the notification publisher.
 */
import {
  generateAuthToken,
  generateAuthTokenFromCredentialsProvider,
} from "aws-msk-iam-sasl-signer-js";
import {
  type Admin,
  type IHeaders,
  type ITopicConfig,
  Kafka,
  type KafkaConfig,
  logLevel as KafkaLogLevel,
  type LogEntry,
  type Message,
  Partitioners,
  type Producer,
  type ProducerConfig,
  type ProducerRecord,
  type SASLOptions,
} from "kafkajs";
import { z } from "zod";
import {
  CONTENT_TYPE,
  encodeNotification,
  HEADERS,
  MAX_MESSAGE_BYTES,
  MAX_TRACE_ID_BYTES,
  messageKey,
  type Notification,
  recordBytes,
  SCHEMA_VERSION,
} from "./contract.ts";
import { type Env, envOptionalBoolean, splitList } from "./env.ts";
import { ConfigError, FandaError, InvalidInputError, toFandaError } from "./errors.ts";
import type { Logger } from "./log.ts";
import {
  type Context,
  endWithError,
  injectTraceHeaders,
  type Span,
  SpanKind,
  startSpan,
} from "./tracing.ts";

/** Kafka auth modes: plaintext (local), SCRAM-SHA-512, OAUTHBEARER (local tests), MSK IAM. */
export const KAFKA_AUTH_MODES = ["plaintext", "iam", "scram", "oauthbearer"] as const;

const brokerSchema = z
  .string()
  .regex(/^[A-Za-z0-9.-]+:\d{1,5}$/, "expected host:port")
  .refine((b) => {
    const port = Number(b.slice(b.lastIndexOf(":") + 1));
    return port > 0 && port < 65536;
  }, "port must be 1-65535");

/** The Kafka part of every entry point's environment. */
export const kafkaEnvShape = {
  KAFKA_BROKERS: z
    .string()
    .default("127.0.0.1:9092")
    .transform((s, ctx) => {
      const brokers = splitList(s);
      if (brokers.length === 0) ctx.addIssue({ code: "custom", message: "no broker given" });
      for (const b of brokers) {
        const r = brokerSchema.safeParse(b);
        if (!r.success) {
          ctx.addIssue({
            code: "custom",
            message: `${JSON.stringify(b)}: ${r.error.issues[0]?.message} (comma-separated host:port list)`,
          });
        }
      }
      return brokers;
    }),
  KAFKA_AUTH: z
    .enum(KAFKA_AUTH_MODES, { error: `expected one of ${KAFKA_AUTH_MODES.join(", ")}` })
    .default("plaintext"),
  KAFKA_SSL: envOptionalBoolean(),
  KAFKA_TOPIC: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,200}$/, "expected a Kafka topic name ([A-Za-z0-9._-], 1-200 chars)")
    .default("fanda-notifications"),
  KAFKA_CLIENT_ID: z.string().default("fanda"),
  KAFKA_SASL_USERNAME: z.string().optional(),
  KAFKA_SASL_PASSWORD: z.string().optional(),
  AWS_REGION: z
    .string()
    .regex(/^[a-z]{2}(-[a-z]+)+-\d$/, "expected an AWS region such as eu-west-1")
    .optional(),
};

/** Parsed Kafka settings. */
export interface KafkaSettings {
  brokers: string[];
  auth: (typeof KAFKA_AUTH_MODES)[number];
  /** TLS; defaults to true for iam and scram, false otherwise. */
  ssl: boolean;
  topic: string;
  clientId: string;
  region?: string;
  username?: string;
  password?: string;
}

/** Cross-variable checks of the Kafka settings (see {@link parseEnv}). */
export function checkKafkaEnv(raw: Env): string[] {
  const issues: string[] = [];
  if (raw.KAFKA_AUTH === "iam" && !raw.AWS_REGION) {
    issues.push("AWS_REGION: is required when KAFKA_AUTH=iam");
  }
  if (raw.KAFKA_AUTH === "scram") {
    for (const v of ["KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD"]) {
      if (!raw[v]) issues.push(`${v}: is required when KAFKA_AUTH=scram`);
    }
  }
  return issues;
}

/** Maps the parsed variables of {@link kafkaEnvShape} to {@link KafkaSettings}. */
export function kafkaSettingsFrom(env: {
  KAFKA_BROKERS: string[];
  KAFKA_AUTH: KafkaSettings["auth"];
  KAFKA_SSL?: boolean | undefined;
  KAFKA_TOPIC: string;
  KAFKA_CLIENT_ID: string;
  AWS_REGION?: string | undefined;
  KAFKA_SASL_USERNAME?: string | undefined;
  KAFKA_SASL_PASSWORD?: string | undefined;
}): KafkaSettings {
  return {
    brokers: env.KAFKA_BROKERS,
    auth: env.KAFKA_AUTH,
    ssl: env.KAFKA_SSL ?? (env.KAFKA_AUTH === "iam" || env.KAFKA_AUTH === "scram"),
    topic: env.KAFKA_TOPIC,
    clientId: env.KAFKA_CLIENT_ID,
    ...(env.AWS_REGION ? { region: env.AWS_REGION } : {}),
    ...(env.KAFKA_SASL_USERNAME ? { username: env.KAFKA_SASL_USERNAME } : {}),
    ...(env.KAFKA_SASL_PASSWORD ? { password: env.KAFKA_SASL_PASSWORD } : {}),
  };
}

/** Name of the dead-letter topic of `topic`. */
export const dlqTopicOf = (topic: string) => `${topic}.dlq`;

const b64url = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");

/**
 * An unsecured (alg `none`) OAUTHBEARER token, as Kafka's unsecured validator accepts.
 * Only for the local broker's OAUTHBEARER listener: it exercises the same SASL path MSK IAM
 * uses, without AWS.
 */
export function unsecuredJwt(subject: string, lifetimeSeconds = 3600, now = Date.now()): string {
  const iat = Math.floor(now / 1000);
  return `${b64url({ alg: "none" })}.${b64url({ sub: subject, iat, exp: iat + lifetimeSeconds })}.`;
}

/** An AWS credentials provider, as the AWS SDK defines it. */
export type AwsCredentialsProvider = Parameters<
  typeof generateAuthTokenFromCredentialsProvider
>[0]["awsCredentialsProvider"];

/**
 * The OAUTHBEARER token provider for MSK IAM: a SigV4-presigned `kafka-cluster:Connect`
 * request, valid 15 minutes, signed with the default credential chain (Lambda execution
 * role, IRSA/Pod Identity) or the given provider.
 * @example
 * const sasl = { mechanism: "oauthbearer", oauthBearerProvider: mskIamTokenProvider("eu-west-1") };
 */
export function mskIamTokenProvider(
  region: string,
  credentials?: AwsCredentialsProvider,
): () => Promise<{ value: string }> {
  return async () => {
    try {
      const { token } = credentials
        ? await generateAuthTokenFromCredentialsProvider({
            region,
            awsCredentialsProvider: credentials,
          })
        : await generateAuthToken({ region });
      return { value: token };
    } catch (cause) {
      throw new FandaError("kafka: generating MSK IAM token", "signer failed", {
        retriable: true,
        cause,
      });
    }
  };
}

function saslFor(settings: KafkaSettings): SASLOptions | undefined {
  switch (settings.auth) {
    case "plaintext":
      return undefined;
    case "iam": {
      const region = settings.region;
      if (!region) throw new FandaError("kafka: configuring IAM auth", "AWS_REGION is required");
      return { mechanism: "oauthbearer", oauthBearerProvider: mskIamTokenProvider(region) };
    }
    case "scram":
      if (!settings.username || !settings.password) {
        throw new FandaError("kafka: configuring SCRAM auth", "username and password are required");
      }
      return {
        mechanism: "scram-sha-512",
        username: settings.username,
        password: settings.password,
      };
    case "oauthbearer":
      return {
        mechanism: "oauthbearer",
        oauthBearerProvider: async () => ({ value: unsecuredJwt(settings.clientId) }),
      };
  }
}

function kafkaLogCreator(logger: Logger) {
  return () =>
    ({ level, log }: LogEntry) => {
      const { message, ...fields } = log;
      const target = logger.child("kafkajs");
      if (level <= KafkaLogLevel.ERROR) target.error(message, fields);
      else if (level <= KafkaLogLevel.WARN) target.warn(message, fields);
      else if (level <= KafkaLogLevel.INFO) target.info(message, fields);
      else target.debug(message, fields);
    };
}

/**
 * Creates a kafkajs client for the configured auth mode.
 * @param options.logger where kafkajs logs go (its WARN and above by default)
 * @param options.logLevel kafkajs log level (default WARN; it is chatty at INFO)
 * @param options.overrides extra kafkajs settings (retry, timeouts), merged last
 */
export function createKafka(
  settings: KafkaSettings,
  options: { logger: Logger; logLevel?: KafkaLogLevel; overrides?: Partial<KafkaConfig> },
): Kafka {
  const sasl = saslFor(settings);
  return new Kafka({
    clientId: settings.clientId,
    brokers: settings.brokers,
    ssl: settings.ssl,
    ...(sasl ? { sasl } : {}),
    logLevel: options.logLevel ?? KafkaLogLevel.WARN,
    logCreator: kafkaLogCreator(options.logger),
    ...options.overrides,
  });
}

/**
 * The `max.message.bytes` of the topics {@link ensureTopics} creates: the contract's
 * {@link MAX_MESSAGE_BYTES} for the notification topic; twice that for its dead-letter topic,
 * which takes every message the main topic took plus the headers saying why it failed.
 */
export const TOPIC_MAX_MESSAGE_BYTES = {
  main: MAX_MESSAGE_BYTES,
  dlq: 2 * MAX_MESSAGE_BYTES,
} as const;

/**
 * Creates `topic` and its dead-letter topic if they do not exist (idempotent), with
 * `max.message.bytes` from {@link TOPIC_MAX_MESSAGE_BYTES}.
 * An existing topic is left as it is.
 * @returns the names of the topics it created
 */
export async function ensureTopics(
  kafka: Kafka,
  topic: string,
  options: { partitions?: number; replicationFactor?: number } = {},
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
        numPartitions: options.partitions ?? 6,
        replicationFactor: options.replicationFactor ?? -1,
        configEntries: [
          {
            name: "max.message.bytes",
            value: String(TOPIC_MAX_MESSAGE_BYTES[t === topic ? "main" : "dlq"]),
          },
        ],
      })),
    );
    return wanted;
  } finally {
    await admin.disconnect();
  }
}

/**
 * Creates topics and returns once the brokers know each with a leader for every partition.
 * kafkajs's own `waitForLeaders` asks any broker, and on several brokers one that has not seen
 * the new topic yet answers UNKNOWN_TOPIC_OR_PARTITION, failing a creation that worked; the
 * leaders are waited for here instead, that answer included.
 * @throws the creation's error, or the last answer once `forMs` have passed without leaders
 */
export async function createTopicsKnown(
  admin: Admin,
  topics: ITopicConfig[],
  forMs = 30_000,
): Promise<void> {
  await admin.createTopics({ waitForLeaders: false, topics });
  const names = topics.map((t) => t.topic);
  // kafkajs throws a partition's LEADER_NOT_AVAILABLE (an election under way); a partition
  // listed without a leader yet is the same answer, waited out the same way.
  await whileTopicUnknown(
    async () => {
      const { topics: known } = await admin.fetchTopicMetadata({ topics: names });
      const led =
        known.length === names.length &&
        known.every((t) => t.partitions.length > 0 && t.partitions.every((p) => p.leader >= 0));
      if (!led) {
        throw Object.assign(
          new FandaError("kafka: creating topics", `no leader yet for ${names.join(", ")}`, {
            retriable: true,
          }),
          { type: "LEADER_NOT_AVAILABLE" },
        );
      }
    },
    forMs,
    ["LEADER_NOT_AVAILABLE"],
  );
}

/** kafkajs's message for each protocol error type we act on; its wrappers drop `type`. */
const KAFKA_ERROR_MESSAGES: ReadonlyMap<string, string> = new Map([
  ["Request is not valid given the current SASL state", "ILLEGAL_SASL_STATE"],
  ["This server does not host this topic-partition", "UNKNOWN_TOPIC_OR_PARTITION"],
]);

/** The Kafka protocol error type of a kafkajs error, looking through its wrappers. */
export function kafkaErrorType(error: unknown): string | undefined {
  let e: unknown = error;
  for (let depth = 0; depth < 5 && e instanceof Error; depth++) {
    const typed = (e as { type?: unknown }).type;
    if (typeof typed === "string") return typed;
    const known = KAFKA_ERROR_MESSAGES.get(e.message);
    if (known) return known;
    e = e.cause ?? (e as { originalError?: unknown }).originalError;
  }
  return undefined;
}

/**
 * A kafkajs failure as a FandaError. Once kafkajs's retrier gives up it throws a
 * KafkaJSNumberOfRetriesExceeded whose own `retriable` is false (kafkajs will not retry
 * again), but what it retried was transient (a broker unreachable, a leader election, a topic
 * being created): the operation may succeed later, so here it is retriable.
 */
export function kafkaFailure(operation: string, cause: unknown): FandaError {
  if (cause instanceof Error && cause.name === "KafkaJSNumberOfRetriesExceeded") {
    return new FandaError(operation, cause.message, { retriable: true, cause });
  }
  return toFandaError(operation, cause);
}

/**
 * Runs `request` again while the brokers answer UNKNOWN_TOPIC_OR_PARTITION, until `forMs` have
 * passed: a broker behind on the cluster's metadata (a topic created a moment ago, a broker just
 * replaced) answers so for a topic that exists. Only an answer that lasts is believed.
 */
async function whileTopicUnknown<T>(
  request: () => Promise<T>,
  forMs: number,
  alsoWaitFor: readonly string[] = [],
): Promise<T> {
  const giveUpAt = Date.now() + forMs;
  for (let wait = 100; ; wait = Math.min(wait * 2, 1000)) {
    try {
      return await request();
    } catch (cause) {
      const type = kafkaErrorType(cause);
      const transient = type === "UNKNOWN_TOPIC_OR_PARTITION" || alsoWaitFor.includes(type ?? "");
      if (!transient || Date.now() >= giveUpAt) throw cause;
    }
    await new Promise((r) => setTimeout(r, wait));
  }
}

/**
 * Asks the cluster for `topic`'s metadata, so that connect fails fast and clearly when
 * authentication was refused (kafkajs only notices on the first request, see
 * docs/architecture.md) or the topic does not exist.
 */
async function probeTopic(kafka: Kafka, topic: string, unknownForMs: number): Promise<void> {
  const admin = kafka.admin({ retry: { retries: 2 } });
  const op = `kafka: checking topic ${topic}`;
  try {
    await admin.connect();
    await whileTopicUnknown(() => admin.fetchTopicMetadata({ topics: [topic] }), unknownForMs);
  } catch (cause) {
    const type = kafkaErrorType(cause);
    if (type === "ILLEGAL_SASL_STATE" || type === "SASL_AUTHENTICATION_FAILED") {
      throw new FandaError(
        op,
        "the broker refused authentication (credentials, IAM policy or token)",
        { retriable: false, cause },
      );
    }
    if (type === "UNKNOWN_TOPIC_OR_PARTITION") {
      throw new FandaError(op, "the topic does not exist (create it: bun scripts/topics.ts)", {
        retriable: false,
        cause,
      });
    }
    throw toFandaError(op, cause);
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

/** Options of one {@link Publisher.publish} call. */
export interface PublishOptions {
  /** The `trace-id` header: the caller's correlation id (default: a random UUID). */
  traceId?: string;
  /**
   * The trace context of each notification, same order (default: the active context for all):
   * each message's publish span is its child, and its `traceparent` header names that span.
   */
  contexts?: readonly Context[];
}

/** Publishes notifications to the main topic. */
export interface Publisher {
  /** Connects the underlying producer; errors surface here, not on first publish. */
  connect(): Promise<void>;
  /**
   * Sends the notifications (one request unless they exceed the topic's message size) and
   * resolves once every in-sync replica has them.
   * @throws InvalidInputError for a notification the contract refuses, a message over the
   *   topic's size or a trace id over MAX_TRACE_ID_BYTES (nothing of the call is sent)
   * @throws FandaError when Kafka does not acknowledge (retriable unless the broker refused
   *   this call's messages for good)
   */
  publish(notifications: readonly Notification[], options?: PublishOptions): Promise<void>;
  /**
   * Sends already-encoded messages as they are (replay of dead letters), through the same
   * coalescing queue and acknowledgements as {@link Publisher.publish}.
   */
  publishRaw(messages: readonly Message[]): Promise<void>;
  disconnect(): Promise<void>;
}

/** Options of {@link createPublisher}. */
export interface PublisherOptions {
  kafka: Kafka;
  topic: string;
  /** Most messages in one produce request when calls are coalesced (default 500). */
  maxBatchMessages?: number;
  /**
   * The topic's `max.message.bytes` (default {@link MAX_MESSAGE_BYTES}, what ensureTopics
   * sets): a larger message is refused before it is queued, and no produce request carries
   * more than this many bytes.
   */
  maxMessageBytes?: number;
  /** Called when the producer was replaced after the brokers lost its sequence state. */
  onRenew?: (cause: unknown) => void;
  /**
   * How long connect keeps asking while the brokers say the topic is unknown before it fails
   * with "the topic does not exist", in ms (default 3000): a broker behind on metadata says
   * so for a topic created a moment ago.
   */
  unknownTopicForMs?: number;
}

/** One publish call: it resolves once all its chunks are acknowledged, or rejects once. */
interface Call {
  resolve: () => void;
  reject: (error: unknown) => void;
  unsent: number;
  failed: boolean;
}

/** Consecutive messages of one call that fit in one produce request. */
interface Chunk {
  call: Call;
  messages: Message[];
  bytes: number;
}

/**
 * The settings of every producer Fanda runs (the publisher, the DLQ): idempotent (MSK IAM:
 * WriteDataIdempotently), one request in flight (kafkajs keeps order per partition only so),
 * the default partitioner (one key, one partition), never creating topics by accident.
 */
export const IDEMPOTENT_PRODUCER: ProducerConfig = {
  idempotent: true,
  maxInFlightRequests: 1,
  createPartitioner: Partitioners.DefaultPartitioner,
  allowAutoTopicCreation: false,
};

/**
 * Protocol errors after which an idempotent producer's sequence state no longer matches the
 * brokers' (a cluster restart or an unclean leader change lost it). kafkajs keeps answering
 * them to every send of that producer, for good: only a new producer id recovers.
 */
const PRODUCER_STATE_LOST: ReadonlySet<string> = new Set([
  "OUT_OF_ORDER_SEQUENCE_NUMBER",
  "UNKNOWN_PRODUCER_ID",
  "INVALID_PRODUCER_EPOCH",
]);

/** An idempotent producer that replaces itself when the brokers lost its sequence state. */
export interface RenewingProducer {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  /** Sends; after a lost-state error, once more on a new producer. */
  send(record: ProducerRecord): Promise<void>;
  /** How many times the producer was replaced. */
  renewals(): number;
}

/**
 * Creates an {@link IDEMPOTENT_PRODUCER} that is replaced by a new one (a new producer id)
 * when a send fails because the brokers lost its sequence state, and the send is tried once
 * more on it: without this, a publisher or DLQ producer fails every send until its process
 * restarts. Sends that fail on an already replaced producer go to the current one.
 * @example
 * const producer = createRenewingProducer(kafka, { onRenew: (err) => log.warn("renewed", { err }) });
 */
export function createRenewingProducer(
  kafka: Pick<Kafka, "producer">,
  options: { onRenew?: (cause: unknown) => void } = {},
): RenewingProducer {
  let producer: Producer = kafka.producer(IDEMPOTENT_PRODUCER);
  let renewing: Promise<void> | undefined;
  let count = 0;
  let connected = false;

  const renew = (failed: Producer, cause: unknown): Promise<void> => {
    if (failed !== producer) return renewing ?? Promise.resolve();
    const next = kafka.producer(IDEMPOTENT_PRODUCER);
    producer = next;
    count++;
    options.onRenew?.(cause);
    void failed.disconnect().catch(() => {});
    renewing = (connected ? next.connect() : Promise.resolve()).finally(() => {
      if (producer === next) renewing = undefined;
    });
    return renewing;
  };

  return {
    async connect() {
      connected = true;
      await producer.connect();
    },
    async disconnect() {
      connected = false;
      await producer.disconnect();
    },
    async send(record) {
      if (renewing) await renewing;
      const used = producer;
      try {
        await used.send(record);
      } catch (cause) {
        const type = kafkaErrorType(cause);
        if (type === undefined || !PRODUCER_STATE_LOST.has(type)) throw cause;
        await renew(used, cause);
        await producer.send(record);
      }
    },
    renewals: () => count,
  };
}

/**
 * Creates the idempotent notification publisher (acks from all in-sync replicas,
 * key `<bucket>/<key>`, contract headers).
 *
 * Calls are coalesced: while one produce request is in flight, the calls that arrive are
 * queued and go out together in the next request, each call resolving when its own messages
 * are acknowledged. With kafkajs's one request in flight per broker (needed for idempotence),
 * this is what lets throughput grow with load instead of queueing one round trip per upload.
 *
 * One call never fails another: a message larger than the topic takes is refused before it
 * is queued; requests stay within maxMessageBytes (a call larger than that goes out in
 * consecutive requests; by message count a call is never split); and when the broker refuses
 * a coalesced request for good, its calls are re-sent one by one, so that only the call it
 * refuses fails. A retriable failure (the broker unreachable) fails every call in the request.
 * @throws ConfigError for a non-positive maxBatchMessages or a maxMessageBytes under 1 KiB
 * @example
 * const publisher = createPublisher({ kafka, topic: "fanda-notifications" });
 * await publisher.connect();
 * await publisher.publish([notification], { traceId });
 */
export function createPublisher(options: PublisherOptions): Publisher {
  const maxBatch = options.maxBatchMessages ?? 500;
  const maxBytes = options.maxMessageBytes ?? MAX_MESSAGE_BYTES;
  const issues: string[] = [];
  if (!Number.isInteger(maxBatch) || maxBatch < 1) {
    issues.push("maxBatchMessages: expected an integer >= 1");
  }
  const unknownFor = options.unknownTopicForMs ?? 3000;
  if (!Number.isInteger(unknownFor) || unknownFor < 0) {
    issues.push("unknownTopicForMs: expected a whole number of ms >= 0");
  }
  if (!Number.isInteger(maxBytes) || maxBytes < 1024) {
    issues.push("maxMessageBytes: expected an integer >= 1024");
  }
  if (issues.length > 0) throw new ConfigError("publisher", issues);
  const producer = createRenewingProducer(
    options.kafka,
    options.onRenew ? { onRenew: options.onRenew } : {},
  );
  const queue: Chunk[] = [];
  let flushing = false;

  const takeBatch = (): Chunk[] => {
    const batch: Chunk[] = [];
    let count = 0;
    let bytes = 0;
    while (queue.length > 0) {
      const next = queue[0] as Chunk;
      if (next.call.failed) {
        queue.shift();
        continue;
      }
      if (
        batch.length > 0 &&
        (count + next.messages.length > maxBatch || bytes + next.bytes > maxBytes)
      ) {
        break;
      }
      batch.push(next);
      count += next.messages.length;
      bytes += next.bytes;
      queue.shift();
    }
    return batch;
  };

  const settle = (chunk: Chunk, error?: FandaError) => {
    const call = chunk.call;
    if (call.failed) return;
    if (error) {
      call.failed = true;
      call.reject(error);
    } else if (--call.unsent === 0) {
      call.resolve();
    }
  };

  /** Sends chunks as one request; undefined when acknowledged, else the failure. */
  const send = async (chunks: Chunk[]): Promise<FandaError | undefined> => {
    const messages = chunks.flatMap((c) => c.messages);
    try {
      await producer.send({ topic: options.topic, acks: -1, messages });
      return undefined;
    } catch (cause) {
      return kafkaFailure(
        `kafka: publishing ${messages.length} message(s) to ${options.topic}`,
        cause,
      );
    }
  };

  const flush = async () => {
    flushing = true;
    while (queue.length > 0) {
      const batch = takeBatch();
      if (batch.length === 0) continue;
      const error = await send(batch);
      if (!error || error.retriable || batch.length === 1) {
        for (const chunk of batch) settle(chunk, error);
        continue;
      }
      // Refused for good, perhaps for one record: each call's part on its own finds which.
      for (const chunk of batch) {
        if (!chunk.call.failed) settle(chunk, await send([chunk]));
      }
    }
    flushing = false;
  };

  const enqueue = (messages: Message[]) =>
    new Promise<void>((resolve, reject) => {
      const chunks: { messages: Message[]; bytes: number }[] = [];
      let current: { messages: Message[]; bytes: number } | undefined;
      for (const [i, message] of messages.entries()) {
        const bytes = recordBytes(message);
        if (bytes > maxBytes) {
          reject(
            new InvalidInputError(
              `kafka: publishing to ${options.topic}`,
              `message ${i} takes ${bytes} bytes, over the topic's limit of ${maxBytes} (max.message.bytes)`,
            ),
          );
          return;
        }
        if (!current || current.bytes + bytes > maxBytes) {
          current = { messages: [], bytes: 0 };
          chunks.push(current);
        }
        current.messages.push(message);
        current.bytes += bytes;
      }
      const call: Call = { resolve, reject, unsent: chunks.length, failed: false };
      for (const chunk of chunks) queue.push({ call, ...chunk });
      if (!flushing) void flush();
    });

  return {
    async connect() {
      try {
        await producer.connect();
        await probeTopic(options.kafka, options.topic, unknownFor);
      } catch (cause) {
        await producer.disconnect().catch(() => {});
        throw cause instanceof FandaError
          ? cause
          : toFandaError("kafka: connecting producer", cause);
      }
    },
    disconnect: () => producer.disconnect(),
    publish(notifications, publishOptions = {}) {
      if (notifications.length === 0) return Promise.resolve();
      const traceId = publishOptions.traceId ?? crypto.randomUUID();
      if (Buffer.byteLength(traceId) > MAX_TRACE_ID_BYTES) {
        return Promise.reject(
          new InvalidInputError(
            `kafka: publishing to ${options.topic}`,
            `trace id is over ${MAX_TRACE_ID_BYTES} bytes`,
          ),
        );
      }
      const spans: Span[] = [];
      let messages: Message[];
      try {
        messages = notifications.map((n, i) => {
          const value = encodeNotification(n);
          const { span, ctx } = startSpan(
            `publish ${options.topic}`,
            {
              kind: SpanKind.PRODUCER,
              attributes: {
                "messaging.system": "kafka",
                "messaging.operation.type": "send",
                "messaging.destination.name": options.topic,
                "fanda.event_id": n.eventId,
                "fanda.category": n.category,
              },
            },
            publishOptions.contexts?.[i],
          );
          spans.push(span);
          const headers: IHeaders = injectTraceHeaders(
            {
              [HEADERS.contentType]: CONTENT_TYPE,
              [HEADERS.schemaVersion]: String(SCHEMA_VERSION),
              [HEADERS.traceId]: traceId,
            },
            ctx,
          );
          return { key: messageKey(n), value, headers };
        });
      } catch (err) {
        for (const span of spans) endWithError(span, err);
        return Promise.reject(err);
      }
      return enqueue(messages).then(
        () => {
          for (const span of spans) span.end();
        },
        (err: unknown) => {
          for (const span of spans) endWithError(span, err);
          throw err;
        },
      );
    },
    publishRaw: (messages) => (messages.length === 0 ? Promise.resolve() : enqueue([...messages])),
  };
}
