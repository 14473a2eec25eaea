/**
 * Redrive of the producer Lambda's failed asynchronous invocations.
 *
 * S3 invokes the producer asynchronously; once Lambda has given up on an event (retries
 * exhausted, or the event grew too old), it sends an *invocation record* to the function's
 * on-failure destination, an SQS queue: JSON with `version`, `timestamp`, `requestContext`
 * (`requestId`, `functionArn`, `condition`, `approximateInvokeCount`), `requestPayload` (the
 * original S3 event) and, when the function ran, `responseContext` and `responsePayload` (the
 * error). See AWS's "Capturing records of Lambda asynchronous invocations".
 *
 * {@link createRedrive} reads those records and re-sends each original S3 event to a target:
 * the producer function itself (a synchronous invoke, {@link createLambdaTarget}) or Kafka
 * directly through the producer's own handler and publisher ({@link createKafkaTarget}).
 * A message is deleted only after its event was re-sent successfully; anything else stays in
 * the queue. Re-sent notifications keep their eventIds (bucket/key/version), so the
 * processor's idempotency drops what had already been delivered before the failure.
 */
import { InvokeCommand, type InvokeCommandOutput } from "@aws-sdk/client-lambda";
import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  ReceiveMessageCommand,
  type ReceiveMessageCommandOutput,
} from "@aws-sdk/client-sqs";
import { z } from "zod";
import { ConfigError, FandaError, InvalidInputError, toFandaError } from "../../core/errors.ts";
import type { Logger } from "../../core/log.ts";
import { createHandler, type ProducerRuntime } from "./lambda.ts";
import { eventIdOf, isSqsEvent, type ParsedS3Event, parseS3Event } from "./s3-event.ts";

/** A queue message is not a redrivable invocation record; it is left in the queue. */
export class InvalidRecordError extends InvalidInputError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super("redrive: reading message", message, options);
  }
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

const recordSchema = z.object({
  version: z.string().regex(/^1\.\d+$/, "expected invocation record version 1.x"),
  timestamp: z.iso.datetime({ offset: true }),
  requestContext: z.object({
    requestId: z.string().min(1),
    functionArn: z.string().regex(/^arn:aws[a-z-]*:lambda:/, "expected a Lambda function ARN"),
    condition: z
      .string()
      .min(1)
      .refine((c) => c !== "Success", "Success: not a failure record (an on-success queue?)"),
    approximateInvokeCount: z.number().int().nonnegative(),
  }),
  // Kept as received (not re-built by zod), so the very same event is re-sent.
  requestPayload: z.custom<Record<string, unknown>>(isObject, "expected a JSON object"),
  responseContext: z
    .object({
      statusCode: z.number().int(),
      executedVersion: z.string().optional(),
      functionError: z.string().optional(),
    })
    .optional(),
  responsePayload: z.unknown().optional(),
});

/** A Lambda asynchronous invocation record, as the on-failure destination receives it. */
export type InvocationRecord = z.output<typeof recordSchema>;

/** A parsed queue message: its record, the S3 event it carries and that event's eventIds. */
export interface FailedInvocation {
  record: InvocationRecord;
  event: ParsedS3Event;
  /** One per object to notify, as the producer derives them (bucket/key/version). */
  eventIds: string[];
}

function issuesOf(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ");
}

/**
 * Parses an SQS message body as a failure invocation record (any version 1.x; fields AWS
 * may add later are ignored).
 * @throws InvalidRecordError for anything else, saying where and what is wrong
 * @example
 * const record = parseInvocationRecord(message.body);
 * record.requestContext.condition; // "RetriesExhausted"
 */
export function parseInvocationRecord(body: string): InvocationRecord {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch (cause) {
    throw new InvalidRecordError("body is not valid JSON", { cause });
  }
  const parsed = recordSchema.safeParse(json);
  if (!parsed.success) {
    throw new InvalidRecordError(`not a Lambda invocation record: ${issuesOf(parsed.error)}`);
  }
  return parsed.data;
}

/**
 * Parses a message body into the record and the S3 event it carries, with the producer's
 * own parser (so what it accepts here, the producer accepts too).
 * @param options.notifyOnRemoved as the producer is configured (removals are skipped otherwise)
 * @throws InvalidRecordError when the body is not a record, or its requestPayload is not an
 *   S3 event the producer accepts
 */
export function readFailedInvocation(
  body: string,
  options: { notifyOnRemoved?: boolean } = {},
): FailedInvocation {
  const record = parseInvocationRecord(body);
  // The handler answers an SQS batch with batchItemFailures instead of failing, so a re-sent
  // one could be lost without an error; such a batch never comes from S3's async invoke.
  if (isSqsEvent(record.requestPayload)) {
    throw new InvalidRecordError("requestPayload is an SQS batch event, not an S3 notification");
  }
  let event: ParsedS3Event;
  try {
    event = parseS3Event(record.requestPayload, {
      notifyOnRemoved: options.notifyOnRemoved ?? false,
    });
  } catch (cause) {
    if (!(cause instanceof InvalidInputError)) throw cause;
    throw new InvalidRecordError(`requestPayload: ${cause.message}`, { cause });
  }
  return { record, event, eventIds: event.objects.map(eventIdOf) };
}

/** The original error of a record, one line, for logs (undefined when there is none). */
export function originalErrorOf(record: InvocationRecord): string | undefined {
  const kind = record.responseContext?.functionError;
  const p = record.responsePayload;
  const type = isObject(p) && typeof p.errorType === "string" ? p.errorType : undefined;
  const message = isObject(p) && typeof p.errorMessage === "string" ? p.errorMessage : undefined;
  const text = [kind, type].filter(Boolean).join(" ");
  if (!text && !message) return undefined;
  return message ? `${text ? `${text}: ` : ""}${message}` : text;
}

/** One message as {@link FailureQueue} hands it out. */
export interface QueueMessage {
  messageId: string;
  receiptHandle: string;
  body: string;
}

/** The on-failure queue, as narrow as the redrive needs it. */
export interface FailureQueue {
  /** Up to `max` messages (maybe none), hidden from other readers for `visibilityTimeoutSeconds`. */
  receive(options: {
    max: number;
    visibilityTimeoutSeconds: number;
    waitTimeSeconds: number;
  }): Promise<QueueMessage[]>;
  /** Removes a message for good. */
  delete(receiptHandle: string): Promise<void>;
  /** Makes a received message visible again at once. */
  release(receiptHandle: string): Promise<void>;
}

/** Where an original S3 event is re-sent. */
export interface RedriveTarget {
  /** For logs and the report, e.g. `lambda fanda-ingest-producer`. */
  readonly name: string;
  /**
   * Re-sends one original S3 event; resolves once it was accepted.
   * @throws FandaError when it was not
   */
  send(event: Record<string, unknown>, context: { requestId: string }): Promise<void>;
}

/** Options of {@link createRedrive}. */
export interface RedriveOptions {
  queue: FailureQueue;
  target: RedriveTarget;
  logger: Logger;
  /** Most messages handled in one run (default 1000). */
  max?: number;
  /** Messages asked for per receive, 1-10 (SQS's limit; default 10). */
  batchSize?: number;
  /**
   * How long received messages stay hidden (default 300 s). Messages left in the queue are
   * released at the end of the run; this only matters if the run is cut short.
   */
  visibilityTimeoutSeconds?: number;
  /** Long-poll wait per receive, 0-20 s (default 2). */
  waitTimeSeconds?: number;
  /** Receives in a row without a new message after which the queue counts as empty (default 3). */
  emptyReceives?: number;
  /** Report what would be redriven; send and delete nothing, release every message. */
  dryRun?: boolean;
  /** As the producer is configured (default false). */
  notifyOnRemoved?: boolean;
  /** Stops after the message in hand; what is left is released. */
  signal?: AbortSignal;
}

/** One message that was not redriven, and why. */
export interface RedriveProblem {
  messageId: string;
  requestId?: string;
  reason: string;
}

/** What a run did. */
export interface RedriveReport {
  dryRun: boolean;
  target: string;
  /** Distinct messages handled. */
  received: number;
  /** Re-sent and deleted (in a dry run: would be re-sent). */
  redriven: number;
  /** Not redriven: not a record, not an S3 event, re-send or delete failed; left in the queue. */
  failed: number;
  /** Valid records whose event has nothing to notify about; left in the queue. */
  skipped: number;
  /** The eventIds of what was (would be) redriven, in order. */
  eventIds: string[];
  failures: RedriveProblem[];
  skips: RedriveProblem[];
  /** Why the run ended. */
  stopped: "max" | "empty" | "aborted";
}

/** A redrive run over the on-failure queue. */
export interface Redrive {
  /**
   * Handles messages until `max` were handled or the queue is empty.
   * @throws FandaError when the queue cannot be read (messages already handled stay handled)
   */
  run(): Promise<RedriveReport>;
}

const intIn = (v: number | undefined, min: number, max: number) =>
  v === undefined || (Number.isInteger(v) && v >= min && v <= max);

/**
 * Creates a redrive over a queue and a target.
 * @throws ConfigError naming every bad option
 * @example
 * const redrive = createRedrive({ queue: createSqsQueue({ client, queueUrl }), target, logger });
 * const report = await redrive.run();
 */
export function createRedrive(options: RedriveOptions): Redrive {
  const issues: string[] = [];
  if (typeof options.queue?.receive !== "function") issues.push("queue: expected a FailureQueue");
  if (typeof options.target?.send !== "function") issues.push("target: expected a RedriveTarget");
  if (!intIn(options.max, 1, Number.MAX_SAFE_INTEGER)) issues.push("max: expected an integer >= 1");
  if (!intIn(options.batchSize, 1, 10)) issues.push("batchSize: expected an integer 1-10");
  if (!intIn(options.visibilityTimeoutSeconds, 1, 43_200)) {
    issues.push("visibilityTimeoutSeconds: expected an integer 1-43200");
  }
  if (!intIn(options.waitTimeSeconds, 0, 20)) {
    issues.push("waitTimeSeconds: expected an integer 0-20");
  }
  if (!intIn(options.emptyReceives, 1, 1000)) {
    issues.push("emptyReceives: expected an integer 1-1000");
  }
  if (issues.length > 0) throw new ConfigError("redrive", issues);

  const { queue, target } = options;
  const max = options.max ?? 1000;
  const batchSize = options.batchSize ?? 10;
  const visibilityTimeoutSeconds = options.visibilityTimeoutSeconds ?? 300;
  const waitTimeSeconds = options.waitTimeSeconds ?? 2;
  const emptyReceives = options.emptyReceives ?? 3;
  const dryRun = options.dryRun ?? false;
  const notifyOnRemoved = options.notifyOnRemoved ?? false;
  const log = options.logger.child("redrive");

  return {
    async run() {
      const report: RedriveReport = {
        dryRun,
        target: target.name,
        received: 0,
        redriven: 0,
        failed: 0,
        skipped: 0,
        eventIds: [],
        failures: [],
        skips: [],
        stopped: "empty",
      };
      // messageId → latest receipt handle of every message received and not deleted.
      const held = new Map<string, string>();
      const seen = new Set<string>();

      const fail = (m: QueueMessage, reason: string, requestId?: string) => {
        report.failed++;
        report.failures.push({
          messageId: m.messageId,
          ...(requestId ? { requestId } : {}),
          reason,
        });
        log.warn("not redriven; left in the queue", {
          messageId: m.messageId,
          ...(requestId ? { requestId } : {}),
          reason,
        });
      };

      const handle = async (m: QueueMessage) => {
        let failed: FailedInvocation;
        try {
          failed = readFailedInvocation(m.body, { notifyOnRemoved });
        } catch (err) {
          fail(m, err instanceof Error ? err.message : String(err));
          return;
        }
        const { record, event, eventIds } = failed;
        const ctx = record.requestContext;
        const fields = {
          messageId: m.messageId,
          requestId: ctx.requestId,
          condition: ctx.condition,
          approximateInvokeCount: ctx.approximateInvokeCount,
          originalError: originalErrorOf(record),
          keys: event.objects.map((o) => `${o.bucket}/${o.key}`),
          eventIds,
        };
        if (event.objects.length === 0) {
          const reason = `nothing to notify: ${event.skipped.map((s) => `${s.at}: ${s.reason}`).join("; ") || "no records"}`;
          report.skipped++;
          report.skips.push({ messageId: m.messageId, requestId: ctx.requestId, reason });
          log.info("skipped; left in the queue", { ...fields, reason });
          return;
        }
        if (dryRun) {
          report.redriven++;
          report.eventIds.push(...eventIds);
          log.info("would redrive", { ...fields, target: target.name });
          return;
        }
        try {
          await target.send(record.requestPayload, { requestId: ctx.requestId });
        } catch (err) {
          const e = toFandaError(`redrive: sending to ${target.name}`, err);
          fail(m, e.message, ctx.requestId);
          return;
        }
        try {
          await queue.delete(m.receiptHandle);
        } catch (err) {
          const e = toFandaError("redrive: deleting the message", err);
          fail(
            m,
            `re-sent, but not deleted (${e.message}); a later run re-sends it and the processor drops the duplicates by eventId`,
            ctx.requestId,
          );
          return;
        }
        held.delete(m.messageId);
        report.redriven++;
        report.eventIds.push(...eventIds);
        log.info("redriven", { ...fields, target: target.name });
      };

      try {
        let empty = 0;
        for (;;) {
          if (options.signal?.aborted) {
            report.stopped = "aborted";
            break;
          }
          if (report.received >= max) {
            report.stopped = "max";
            break;
          }
          let batch: QueueMessage[];
          try {
            batch = await queue.receive({
              max: Math.min(batchSize, max - report.received),
              visibilityTimeoutSeconds,
              waitTimeSeconds,
            });
          } catch (err) {
            throw toFandaError("redrive: receiving from the queue", err);
          }
          for (const m of batch) held.set(m.messageId, m.receiptHandle);
          // A message seen before is one this run left and whose visibility ran out.
          const fresh = batch.filter((m) => !seen.has(m.messageId));
          if (fresh.length === 0) {
            if (++empty >= emptyReceives) {
              report.stopped = "empty";
              break;
            }
            continue;
          }
          empty = 0;
          for (const m of fresh) {
            if (options.signal?.aborted || report.received >= max) break;
            seen.add(m.messageId);
            report.received++;
            await handle(m);
          }
        }
      } finally {
        for (const [messageId, receiptHandle] of held) {
          await Promise.resolve()
            .then(() => queue.release(receiptHandle))
            .catch((err: unknown) => {
              log.warn("could not release; visible again after the visibility timeout", {
                messageId,
                visibilityTimeoutSeconds,
                err,
              });
            });
        }
      }
      const { eventIds: _ids, failures: _f, skips: _s, ...counts } = report;
      log.info(dryRun ? "redrive dry run finished" : "redrive finished", counts);
      return report;
    },
  };
}

/** The part of SQSClient the queue adapter uses; an SQSClient fits. */
export interface SqsApi {
  send(
    command: ReceiveMessageCommand | DeleteMessageCommand | ChangeMessageVisibilityCommand,
  ): Promise<unknown>;
}

/**
 * The on-failure queue over SQS.
 * @throws ConfigError for a queue URL that is not an http(s) URL
 * @example
 * const queue = createSqsQueue({ client: new SQSClient({ region }), queueUrl });
 */
export function createSqsQueue(options: { client: SqsApi; queueUrl: string }): FailureQueue {
  const { client, queueUrl } = options;
  let url: URL | undefined;
  try {
    url = new URL(queueUrl);
  } catch {
    url = undefined;
  }
  if (!url || !/^https?:$/.test(url.protocol) || url.pathname.length < 2) {
    throw new ConfigError("redrive", [
      "queueUrl: expected an SQS queue URL such as https://sqs.<region>.amazonaws.com/<account>/<queue>",
    ]);
  }
  return {
    async receive({ max, visibilityTimeoutSeconds, waitTimeSeconds }) {
      const out = (await client.send(
        new ReceiveMessageCommand({
          QueueUrl: queueUrl,
          MaxNumberOfMessages: max,
          VisibilityTimeout: visibilityTimeoutSeconds,
          WaitTimeSeconds: waitTimeSeconds,
        }),
      )) as ReceiveMessageCommandOutput;
      return (out.Messages ?? []).map((m, i) => {
        if (!m.MessageId || !m.ReceiptHandle) {
          throw new FandaError(
            "sqs: ReceiveMessage",
            `message ${i} has no MessageId or ReceiptHandle`,
          );
        }
        return { messageId: m.MessageId, receiptHandle: m.ReceiptHandle, body: m.Body ?? "" };
      });
    },
    async delete(receiptHandle) {
      await client.send(
        new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: receiptHandle }),
      );
    },
    async release(receiptHandle) {
      await client.send(
        new ChangeMessageVisibilityCommand({
          QueueUrl: queueUrl,
          ReceiptHandle: receiptHandle,
          VisibilityTimeout: 0,
        }),
      );
    },
  };
}

/** The part of LambdaClient the Lambda target uses; a LambdaClient fits. */
export interface LambdaApi {
  send(command: InvokeCommand): Promise<InvokeCommandOutput>;
}

/** A function name, partial or full ARN, optionally qualified (as the Invoke API accepts). */
const FUNCTION_NAME =
  /^(arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\d{1}:)?(\d{12}:)?(function:)?([a-zA-Z0-9-_.]+)(:(\$LATEST|[a-zA-Z0-9-_]+))?$/;

/**
 * Re-sends events by invoking the producer function synchronously (RequestResponse) with the
 * original payload: for an operator's machine, outside the VPC that MSK is reachable from.
 * A function error in the response counts as a failure; a synchronous invoke does not go to
 * the on-failure destination, so a failed redrive leaves only the original record behind.
 * @throws ConfigError for a bad function name
 */
export function createLambdaTarget(options: { client: LambdaApi; functionName: string }) {
  if (!FUNCTION_NAME.test(options.functionName) || options.functionName.length > 170) {
    throw new ConfigError("redrive", [
      "functionName: expected a Lambda function name or ARN (the stack output producerFunction)",
    ]);
  }
  const { client, functionName } = options;
  const op = `lambda: invoking ${functionName}`;
  const target: RedriveTarget = {
    name: `lambda ${functionName}`,
    async send(event) {
      let out: InvokeCommandOutput;
      try {
        out = await client.send(
          new InvokeCommand({
            FunctionName: functionName,
            InvocationType: "RequestResponse",
            Payload: new TextEncoder().encode(JSON.stringify(event)),
          }),
        );
      } catch (cause) {
        throw toFandaError(op, cause);
      }
      const text = out.Payload ? new TextDecoder().decode(out.Payload) : "";
      if (out.FunctionError) {
        let error: unknown;
        try {
          error = JSON.parse(text);
        } catch {
          error = undefined;
        }
        const type = isObject(error) && typeof error.errorType === "string" ? error.errorType : "";
        const message =
          isObject(error) && typeof error.errorMessage === "string" ? error.errorMessage : text;
        throw new FandaError(
          op,
          `function error (${out.FunctionError}) ${type ? `${type}: ` : ""}${message}`.trim(),
          // Bad input fails the same way every time; anything else (Kafka, timeouts) may pass.
          { retriable: type !== "InvalidInputError" },
        );
      }
      if (out.StatusCode !== undefined && out.StatusCode !== 200) {
        throw new FandaError(op, `unexpected status ${out.StatusCode}`, { retriable: true });
      }
    },
  };
  return target;
}

/**
 * Re-sends events straight to Kafka through the producer's own Lambda handler and publisher
 * (same parsing, categories, eventIds and headers as the function): for running inside the
 * VPC or cluster, where MSK is reachable.
 */
export function createKafkaTarget(options: { runtime: ProducerRuntime; topic: string }) {
  const handler = createHandler(async () => options.runtime);
  const target: RedriveTarget = {
    name: `kafka ${options.topic}`,
    async send(event, context) {
      const result = await handler(event, { awsRequestId: context.requestId });
      if ("batchItemFailures" in result && result.batchItemFailures.length > 0) {
        throw new FandaError("redrive: publishing", "the handler reported failed items");
      }
    },
  };
  return target;
}

/** An in-memory {@link FailureQueue} that records what was done to it. */
export interface MemoryQueue extends FailureQueue {
  /** Every receive call's options, in order. */
  readonly receives: { max: number; visibilityTimeoutSeconds: number; waitTimeSeconds: number }[];
  /** messageIds deleted, in order. */
  readonly deleted: string[];
  /** messageIds released, in order. */
  readonly released: string[];
  /** messageIds still in the queue, in order. */
  remaining(): string[];
  /** Makes every received message visible again, as a lapsed visibility timeout does. */
  expire(): void;
}

/**
 * Creates an in-memory queue holding `messages` (bodies, or bodies with their ids), with
 * SQS's visibility semantics within one process: a received message is hidden until it is
 * released or {@link MemoryQueue.expire} is called, and each receive hands out a new receipt
 * handle, the old one no longer valid. For tests and for trying a redrive locally.
 * @example
 * const queue = createMemoryQueue([JSON.stringify(record)]);
 */
export function createMemoryQueue(
  messages: readonly (string | { messageId: string; body: string })[],
): MemoryQueue {
  const entries = messages.map((m, i) => ({
    ...(typeof m === "string" ? { messageId: `m-${i + 1}`, body: m } : m),
    handle: undefined as string | undefined,
    hidden: false,
  }));
  let receipts = 0;
  const byHandle = (receiptHandle: string) => {
    const entry = entries.find((e) => e.handle === receiptHandle);
    if (!entry) {
      throw new FandaError("memory queue", `receipt handle ${receiptHandle} is not valid`);
    }
    return entry;
  };
  const queue: MemoryQueue = {
    receives: [],
    deleted: [],
    released: [],
    remaining: () => entries.map((e) => e.messageId),
    expire() {
      for (const e of entries) e.hidden = false;
    },
    async receive(options) {
      queue.receives.push({ ...options });
      return entries
        .filter((e) => !e.hidden)
        .slice(0, options.max)
        .map((e) => {
          e.hidden = true;
          e.handle = `${e.messageId}#${++receipts}`;
          return { messageId: e.messageId, receiptHandle: e.handle, body: e.body };
        });
    },
    async delete(receiptHandle) {
      const entry = byHandle(receiptHandle);
      entries.splice(entries.indexOf(entry), 1);
      queue.deleted.push(entry.messageId);
    },
    async release(receiptHandle) {
      const entry = byHandle(receiptHandle);
      entry.hidden = false;
      queue.released.push(entry.messageId);
    },
  };
  return queue;
}
