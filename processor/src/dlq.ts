/**
 * Dead letters: a message that cannot reach a final "delivered" goes, unchanged, to
 * `<topic>.dlq` with the reason in headers, so nothing is lost and it can be replayed.
 */
import type { IHeaders, Kafka, KafkaMessage } from "kafkajs";
import { createRenewingProducer, dlqTopicOf } from "../../core/kafka.ts";
import { toFandaError } from "./errors.ts";

/** Header names the DLQ adds to the original message's headers. */
export const DLQ_HEADERS = {
  reason: "dlq-reason",
  error: "dlq-error",
  errorClass: "dlq-error-class",
  attempts: "dlq-attempts",
  channels: "dlq-failed-channels",
  sourceTopic: "dlq-source-topic",
  sourcePartition: "dlq-source-partition",
  sourceOffset: "dlq-source-offset",
  time: "dlq-time",
} as const;

/**
 * Why a message was dead-lettered. `processing-error`: handling it threw (a bug, or input no
 * check foresaw); the error and its class are in the headers, and it can be replayed once fixed.
 */
export type DeadLetterReason =
  | "invalid-message"
  | "unknown-schema-version"
  | "delivery-failed"
  | "processing-error";

/** Every reason, for the metrics' label values, replay filters and docs. */
export const DEAD_LETTER_REASONS: readonly DeadLetterReason[] = [
  "invalid-message",
  "unknown-schema-version",
  "delivery-failed",
  "processing-error",
];

/** One message to dead-letter. */
export interface DeadLetter {
  topic: string;
  partition: number;
  message: Pick<KafkaMessage, "key" | "value" | "headers" | "offset">;
  reason: DeadLetterReason;
  /** Human-readable cause (last error). */
  error: string;
  /** Name of the error's class (e.g. ChannelError, InvalidInputError). */
  errorClass?: string;
  /** Channels that did not deliver, for delivery failures. */
  failedChannels?: string[];
  /** Attempts made, per failed channel, in the order of failedChannels. */
  attempts?: number[];
}

/** Publishes dead letters. */
export interface DeadLetterQueue {
  connect(): Promise<void>;
  /** Resolves once the DLQ topic has the message on every in-sync replica. */
  send(letters: readonly DeadLetter[]): Promise<void>;
  disconnect(): Promise<void>;
}

/**
 * Creates the DLQ publisher for messages of `topic`.
 * @example
 * const dlq = createDeadLetterQueue({ kafka, topic: "fanda-notifications" });
 */
export function createDeadLetterQueue(options: {
  kafka: Kafka;
  topic: string;
  /** Called when the producer was replaced after the brokers lost its sequence state. */
  onRenew?: (cause: unknown) => void;
}): DeadLetterQueue {
  const target = dlqTopicOf(options.topic);
  // Renewing: after a cluster restart a DLQ producer whose sequence state the brokers lost
  // failed every send, so every partition with a failed message stayed paused until restart.
  const producer = createRenewingProducer(
    options.kafka,
    options.onRenew ? { onRenew: options.onRenew } : {},
  );
  return {
    connect: () => producer.connect(),
    disconnect: () => producer.disconnect(),
    async send(letters) {
      if (letters.length === 0) return;
      const now = new Date().toISOString();
      const messages = letters.map((l) => {
        const headers: IHeaders = {
          ...(l.message.headers ?? {}),
          [DLQ_HEADERS.reason]: l.reason,
          // Header values are bounded: a huge stack trace would bloat every DLQ record.
          [DLQ_HEADERS.error]: l.error.slice(0, 2000),
          [DLQ_HEADERS.sourceTopic]: l.topic,
          [DLQ_HEADERS.sourcePartition]: String(l.partition),
          [DLQ_HEADERS.sourceOffset]: l.message.offset,
          [DLQ_HEADERS.time]: now,
          ...(l.failedChannels ? { [DLQ_HEADERS.channels]: l.failedChannels.join(",") } : {}),
          ...(l.attempts ? { [DLQ_HEADERS.attempts]: l.attempts.join(",") } : {}),
          ...(l.errorClass ? { [DLQ_HEADERS.errorClass]: l.errorClass } : {}),
        };
        return { key: l.message.key, value: l.message.value, headers };
      });
      try {
        await producer.send({ topic: target, acks: -1, messages });
      } catch (cause) {
        throw toFandaError(`dlq: publishing ${messages.length} message(s) to ${target}`, cause);
      }
    },
  };
}
