/**
 * The consumption loop: kafkajs `eachBatch`, auto-commit off. Within a partition messages are
 * handled in offset order; an offset is resolved and committed only once its message has a
 * final outcome (delivered on every enabled channel, or safely in the dead-letter topic).
 * A message whose outcome is not final (shutdown in the middle, DLQ unreachable) is left
 * uncommitted, so Kafka gives it to us, or to the next owner of the partition, again.
 */
import type { Consumer, EachBatchPayload, Kafka, KafkaMessage } from "kafkajs";
import { decodeNotification, UnknownSchemaVersionError } from "../../producer/src/contract.ts";
import type { Logger } from "../../producer/src/log.ts";
import type { Dispatcher } from "./dispatch.ts";
import type { DeadLetterQueue } from "./dlq.ts";
import { ConfigError, FandaError, InvalidInputError } from "./errors.ts";
import type { Metrics } from "./metrics.ts";

/** What the consumer is doing, for health and readiness. */
export interface ConsumerState {
  /** `run()` is active (false before start, after stop, and after a fatal crash). */
  running: boolean;
  /** Member of the group with an assignment (false while rebalancing). */
  joined: boolean;
  /** Partitions of the topic assigned to this member. */
  partitions: number[];
  /** The crash that stopped the consumer for good, if any. */
  fatal?: Error;
  /** Time of the last finished batch (ms since epoch). */
  lastBatchAt?: number;
}

/** The running consumer. */
export interface NotificationConsumer {
  start(): Promise<void>;
  /** Stops fetching, lets the in-flight batch finish, commits, leaves the group. */
  stop(): Promise<void>;
  state(): ConsumerState;
}

/** Options of {@link createNotificationConsumer}. */
export interface ConsumerOptions {
  kafka: Kafka;
  topic: string;
  groupId: string;
  dispatch: Dispatcher;
  dlq: Pick<DeadLetterQueue, "send">;
  logger: Logger;
  metrics: Metrics;
  /** Partitions handled at the same time (default 3). */
  partitionsConsumedConcurrently?: number;
  /** Aborted when in-flight deliveries must give up (hard shutdown). */
  abortSignal?: AbortSignal;
  /** Called when the consumer crashed and kafkajs will not restart it. */
  onFatal?: (error: Error) => void;
  /** Read the topic from the beginning when the group has no committed offset (default true). */
  fromBeginning?: boolean;
}

/** Thrown when a message's outcome could not be made final; the batch stops uncommitted. */
export class OutcomeNotFinalError extends FandaError {
  constructor(message: string, cause?: unknown) {
    super("consumer: handling message", message, { retriable: true, cause });
  }
}

/**
 * Creates the notification consumer.
 * @throws ConfigError for a non-positive concurrency
 */
export function createNotificationConsumer(options: ConsumerOptions): NotificationConsumer {
  const concurrency = options.partitionsConsumedConcurrently ?? 3;
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new ConfigError("consumer", ["partitionsConsumedConcurrently: expected an integer >= 1"]);
  }
  const log = options.logger.child("consumer");
  const { metrics } = options;
  const abortSignal = options.abortSignal ?? new AbortController().signal;
  const state: ConsumerState = { running: false, joined: false, partitions: [] };
  const consumer: Consumer = options.kafka.consumer({
    groupId: options.groupId,
    allowAutoTopicCreation: false,
    // A batch may take a while when a channel retries; heartbeats are sent per message.
    sessionTimeout: 30_000,
    heartbeatInterval: 3_000,
    // Fetches return as soon as data arrives; the wait only bounds an idle long-poll, and
    // shutdown waits for it, so keep it short.
    maxWaitTimeInMs: 1_000,
  });

  consumer.on(consumer.events.GROUP_JOIN, (e) => {
    state.joined = true;
    state.partitions = [...(e.payload.memberAssignment[options.topic] ?? [])].sort((a, b) => a - b);
    log.info("joined group", { groupId: options.groupId, partitions: state.partitions });
  });
  consumer.on(consumer.events.REBALANCING, () => {
    state.joined = false;
  });
  consumer.on(consumer.events.STOP, () => {
    state.running = false;
    state.joined = false;
  });
  consumer.on(consumer.events.CRASH, (e) => {
    const error = e.payload.error;
    if (e.payload.restart) {
      log.warn("consumer crashed, kafkajs restarts it", { err: error });
      return;
    }
    state.running = false;
    state.joined = false;
    state.fatal = error;
    log.error("consumer crashed for good", { err: error });
    options.onFatal?.(error);
  });

  const deadLetter = async (
    topic: string,
    partition: number,
    message: KafkaMessage,
    reason: Parameters<DeadLetterQueue["send"]>[0][number]["reason"],
    error: string,
    failedChannels?: string[],
  ) => {
    try {
      await options.dlq.send([
        { topic, partition, message, reason, error, ...(failedChannels ? { failedChannels } : {}) },
      ]);
    } catch (cause) {
      throw new OutcomeNotFinalError(`dead-lettering offset ${message.offset} failed`, cause);
    }
    metrics.deadLetters.inc({ reason });
    log.warn("dead-lettered", { topic, partition, offset: message.offset, reason, error });
  };

  const handle = async (topic: string, partition: number, message: KafkaMessage) => {
    let notification: ReturnType<typeof decodeNotification>;
    try {
      notification = decodeNotification(message.value);
    } catch (err) {
      if (!(err instanceof InvalidInputError)) throw err;
      const reason =
        err instanceof UnknownSchemaVersionError ? "unknown-schema-version" : "invalid-message";
      await deadLetter(topic, partition, message, reason, err.message);
      return;
    }
    const result = await options.dispatch(notification, abortSignal);
    for (const o of result.outcomes) {
      const labels = { channel: o.channel, category: notification.category };
      if (o.status === "delivered") metrics.notifications.inc(labels);
      else metrics.failures.inc(labels);
      metrics.sendSeconds.observe({ channel: o.channel, outcome: o.status }, o.durationMs / 1000);
    }
    if (result.delivered) {
      const uploaded = Date.parse(notification.uploadTime);
      metrics.endToEndSeconds.observe(
        { category: notification.category },
        Math.max(0, (Date.now() - uploaded) / 1000),
      );
      return;
    }
    if (abortSignal.aborted) {
      throw new OutcomeNotFinalError(`shutdown interrupted delivery of offset ${message.offset}`);
    }
    const failed = result.outcomes.filter((o) => o.status === "failed");
    await deadLetter(
      topic,
      partition,
      message,
      "delivery-failed",
      failed.map((o) => (o.status === "failed" ? o.error.message : o.channel)).join("; "),
      failed.map((o) => o.channel),
    );
  };

  const eachBatch = async (payload: EachBatchPayload) => {
    const { batch, resolveOffset, heartbeat, commitOffsetsIfNecessary, uncommittedOffsets } =
      payload;
    try {
      for (const message of batch.messages) {
        if (!payload.isRunning() || payload.isStale()) break;
        await handle(batch.topic, batch.partition, message);
        resolveOffset(message.offset);
        await heartbeat();
      }
    } finally {
      // Commit what reached a final outcome, even when the batch stopped early.
      await commitOffsetsIfNecessary(uncommittedOffsets());
      state.lastBatchAt = Date.now();
    }
  };

  return {
    async start() {
      await consumer.connect();
      await consumer.subscribe({
        topics: [options.topic],
        fromBeginning: options.fromBeginning ?? true,
      });
      state.running = true;
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: concurrency,
        eachBatch,
      });
    },
    async stop() {
      await consumer.disconnect();
      state.running = false;
      state.joined = false;
    },
    state: () => ({ ...state, partitions: [...state.partitions] }),
  };
}
