/**
 * The consumption loop: kafkajs `eachBatch`, auto-commit off.
 *
 * Per batch (one partition):
 * 1. decode every message; the ones that are not valid notifications go to the DLQ;
 * 2. claim every (eventId, channel) of the batch in the idempotency store, one round trip;
 * 3. handle messages concurrently up to `concurrency`, but one key's messages in offset
 *    order: channels already `done` are skipped, the claimed ones are sent (dispatch);
 * 4. resolve the offsets of the longest prefix whose outcomes are final (delivered on every
 *    routed channel, or dead-lettered). Commits happen every `commitIntervalMs` (and when
 *    a batch stops early, and at shutdown), each after the delivery records of everything it
 *    commits are written. A crash before a commit redelivers: the idempotency store turns
 *    the redelivery into no sends, and rows for deliveries found done are written again.
 *
 * Nothing one message does stops more than that message: any exception while handling it
 * (decode, route, claim bookkeeping, send, settle, records) is its outcome, a dead letter with
 * reason `processing-error`; copies of one eventId in a batch are sent once.
 *
 * A message whose outcome is not final (a channel is down, another worker holds the claim,
 * the store is unreachable, shutdown interrupted it) stops its key's sequence and the
 * partition is paused with a growing delay: Kafka hands the unresolved rest to us again
 * later, and the idempotency store makes the replay send only what did not finish. So an
 * outage slows consumption; nothing is dropped, and nothing is committed ahead of its outcome.
 *
 * This file is the batch runner (fetch, pause/resume, heartbeats, commit scheduling); its
 * collaborators are in consumer/: the message handler (decode, route, send, settle, outcome),
 * the offset ledger (what may be committed, and the records to write first) and the
 * store-retry policy for marks after a send.
 */

import { setTimeout as sleep } from "node:timers/promises";
import type { Consumer, EachBatchPayload, Kafka } from "kafkajs";
import type { Notification } from "../../core/contract.ts";
import { dlqTopicOf } from "../../core/kafka.ts";
import type { Logger } from "../../core/log.ts";
import { runInContext } from "../../core/tracing.ts";
import { createFinalAhead } from "./consumer/final-ahead.ts";
import { createMessageHandler, deliveryKey, type Item, type Reason } from "./consumer/handler.ts";
import { createOffsetLedger } from "./consumer/ledger.ts";
import { createSettler } from "./consumer/store-retry.ts";
import { traceBatch, traceLogWrite } from "./consumer/tracing.ts";
import type { DeliveryLog, DeliveryRecord } from "./delivery-log/index.ts";
import type { Dispatcher } from "./dispatch.ts";
import type { DeadLetterQueue } from "./dlq.ts";
import { ConfigError, toFandaError } from "./errors.ts";
import type { ClaimState, IdempotencyStore } from "./idempotency.ts";
import type { Metrics } from "./metrics.ts";
import type { Route, Router } from "./routing.ts";
import { repeatEvery } from "./text.ts";

/** What the consumer is doing, for health and readiness. */
export interface ConsumerState {
  /**
   * `run()` is active: false before start, after stop, after a fatal crash, and while kafkajs
   * restarts the consumer after a retriable one (true again once it rejoins the group).
   */
  running: boolean;
  /** Member of the group with an assignment (false while rebalancing). */
  joined: boolean;
  /** Partitions of the topic assigned to this member. */
  partitions: number[];
  /** Partitions paused because outcomes were not final, with when they resume. */
  paused: { partition: number; until: string; reason: string }[];
  /** The crash that stopped the consumer for good, if any. */
  fatal?: Error;
  /** Time of the last finished batch (ms since epoch). */
  lastBatchAt?: number;
  /**
   * The topic or its DLQ topic, when start() found them missing and waits for them (nothing is
   * consumed meanwhile: a dead letter would have nowhere to go). Empty once both exist.
   */
  missingTopics?: string[];
  /** Partitions whose last batch left a message not final: why, and when (ms since epoch). */
  notFinal?: { partition: number; reason: string; at: number }[];
  /** Batches being handled now, per partition, since when (ms since epoch). */
  inFlight?: { partition: number; since: number }[];
}

/**
 * Why `partition` is not progressing, as far as the consumer knows: the topic missing, the
 * consumer not running, the reason its last batch stopped (channel-down, dlq-unavailable,
 * claimed-elsewhere, audit-unavailable, store-unavailable, processing-error, shutdown), or
 * `in-flight` when a batch started before that and has not ended (a send that hangs).
 */
export function stallReason(state: ConsumerState, partition: number): string {
  if ((state.missingTopics ?? []).length > 0) return "topic-missing";
  if (state.fatal) return "crashed";
  if (!state.running) return "not-running";
  const stopped = state.notFinal?.find((p) => p.partition === partition);
  const running = state.inFlight?.find((p) => p.partition === partition);
  if (running && (!stopped || running.since < stopped.at)) return "in-flight";
  return stopped?.reason ?? "unknown";
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
  route: Router;
  store: IdempotencyStore;
  deliveryLog: DeliveryLog;
  dlq: Pick<DeadLetterQueue, "send">;
  logger: Logger;
  metrics: Metrics;
  /** Messages of one batch handled at the same time, different keys only (default 32). */
  concurrency?: number;
  /** Partitions handled at the same time (default 3). */
  partitionsConsumedConcurrently?: number;
  /** Session timeout in ms (default 30000); heartbeats go every tenth of it. */
  sessionTimeoutMs?: number;
  /** First pause after a non-final outcome, doubling up to `pauseMaxMs` (default 1000). */
  pauseMinMs?: number;
  /** Longest pause (default 30000). */
  pauseMaxMs?: number;
  /** Commit resolved offsets at most this often in ms, records written first (default 1000). */
  commitIntervalMs?: number;
  /** Also commit when this many delivery records wait to be written (default 2000). */
  flushRecords?: number;
  /** Deliver without idempotency while the store is unreachable (default false: wait). */
  failOpen?: boolean;
  /** Aborted when in-flight deliveries must give up (hard shutdown). */
  abortSignal?: AbortSignal;
  /** Called when the consumer crashed and kafkajs will not restart it. */
  onFatal?: (error: Error) => void;
  /** Read the topic from the beginning when the group has no committed offset (default true). */
  fromBeginning?: boolean;
  /** How often start() looks again for a missing topic or DLQ topic, in ms (default 5000). */
  topicCheckMs?: number;
  /**
   * Renews a batch's claims while the batch runs (main.ts: every third of the claim TTL),
   * each message's until it is handled. A message waiting behind others of its batch (a slow
   * channel, a rate limit), or whose own send outlasts the claim TTL, would otherwise have its
   * claims expire, and a worker taking the partition over would claim and send it too. A
   * claim found lost is taken again before its send. Off when unset. `every` runs `fn` every
   * `ms` until the function it returns is called (tests).
   */
  claimRenewal?: { intervalMs: number; every?: (fn: () => void, ms: number) => () => void };
}

/** Runs `work` over `items` with at most `limit` running at once. */
async function eachLimited<T>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<void>,
) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await work(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/**
 * Creates the notification consumer.
 * @throws ConfigError for non-positive concurrency or pause settings
 */
export function createNotificationConsumer(options: ConsumerOptions): NotificationConsumer {
  const concurrency = options.concurrency ?? 32;
  const partitionsConcurrently = options.partitionsConsumedConcurrently ?? 3;
  const pauseMin = options.pauseMinMs ?? 1000;
  const pauseMax = options.pauseMaxMs ?? 30_000;
  const commitIntervalMs = options.commitIntervalMs ?? 1000;
  const flushRecords = options.flushRecords ?? 2000;
  const issues: string[] = [];
  if (!Number.isInteger(concurrency) || concurrency < 1)
    issues.push("concurrency: expected an integer >= 1");
  if (!Number.isInteger(partitionsConcurrently) || partitionsConcurrently < 1) {
    issues.push("partitionsConsumedConcurrently: expected an integer >= 1");
  }
  if (!Number.isInteger(commitIntervalMs) || commitIntervalMs < 0)
    issues.push("commitIntervalMs: expected an integer >= 0");
  if (!Number.isInteger(flushRecords) || flushRecords < 1)
    issues.push("flushRecords: expected an integer >= 1");
  if (!(pauseMin > 0) || !(pauseMax >= pauseMin))
    issues.push("pauseMinMs/pauseMaxMs: expected 0 < min <= max");
  const topicCheckMs = options.topicCheckMs ?? 5000;
  if (!Number.isInteger(topicCheckMs) || topicCheckMs < 1)
    issues.push("topicCheckMs: expected an integer >= 1");
  const renewal = options.claimRenewal;
  if (renewal && (!Number.isInteger(renewal.intervalMs) || renewal.intervalMs < 1))
    issues.push("claimRenewal.intervalMs: expected an integer >= 1");
  if (issues.length > 0) throw new ConfigError("consumer", issues);

  const log = options.logger.child("consumer");
  const { metrics, store, deliveryLog, dispatch } = options;
  const abortSignal = options.abortSignal ?? new AbortController().signal;
  const state: ConsumerState = { running: false, joined: false, partitions: [], paused: [] };
  let started = false;
  const pauseStreak = new Map<number, number>();
  const ledger = createOffsetLedger();
  const heartbeatInterval = Math.floor((options.sessionTimeoutMs ?? 30_000) / 10);
  const consumer: Consumer = options.kafka.consumer({
    groupId: options.groupId,
    allowAutoTopicCreation: false,
    // A batch may take a while when a channel retries; heartbeats are sent while it runs.
    sessionTimeout: options.sessionTimeoutMs ?? 30_000,
    heartbeatInterval,
    // Fetches return as soon as data arrives; the wait only bounds an idle long-poll, and
    // shutdown waits for it, so keep it short.
    maxWaitTimeInMs: 1_000,
    // Bounds what one fetch holds in memory (kafkajs keeps every message of a fetch alive
    // until all its batches are handled): ~500 notifications per partition per fetch.
    maxBytesPerPartition: 256 * 1024,
    maxBytes: 2 * 1024 * 1024,
  });

  // Set by stop(): after it, a join (kafkajs finishing a restart) must not count as running.
  let stopping = false;
  const stopped = new AbortController();
  consumer.on(consumer.events.GROUP_JOIN, (e) => {
    // kafkajs restarts a consumer after a retriable crash (its STOP then set running false);
    // joining the group again is when it consumes again, so readiness and the commit ticker
    // come back with it.
    if (started && !stopping && !state.fatal) state.running = true;
    state.joined = true;
    state.partitions = [...(e.payload.memberAssignment[options.topic] ?? [])].sort((a, b) => a - b);
    // Never commit for a partition another member now owns: its progress is its own.
    ledger.assign(state.partitions);
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

  const handler = createMessageHandler({
    route: options.route,
    dispatch,
    store,
    dlq: options.dlq,
    settle: createSettler({ store, logger: log, abortSignal }),
    metrics,
    logger: log,
    failOpen: options.failOpen ?? false,
    abortSignal,
  });

  /** Writes records, waiting out a database outage (consumption holds meanwhile). */
  const writeRecords = async (records: DeliveryRecord[], isRunning: () => boolean) => {
    for (let attempt = 1; ; attempt++) {
      try {
        await traceLogWrite(records, deliveryLog.kind, () => deliveryLog.write(records));
        return true;
      } catch (err) {
        if (abortSignal.aborted || !isRunning()) return false;
        log.warn("delivery log unavailable, retrying", { attempt, err });
        await sleep(Math.min(5000, 200 * 2 ** Math.min(attempt, 5)));
      }
    }
  };

  // Delivery records wait here until the next commit; a commit happens only after the
  // records of every offset it commits are written. Records are pushed before their
  // offsets are resolved, so a snapshot of the resolved offsets taken first is covered by
  // the records taken right after it.
  let lastCommitAt = Date.now();
  let committing: Promise<boolean> = Promise.resolve(true);

  /** Writes buffered records, then commits the offsets resolved before them. One at a time. */
  let flushing = false;
  const flushAndCommit = (isRunning: () => boolean): Promise<boolean> => {
    flushing = true;
    committing = committing.then(async () => {
      const snapshot = ledger.uncommitted();
      const records = ledger.take();
      const started = performance.now();
      if (records.length > 0 && !(await writeRecords(records, isRunning))) {
        ledger.restore(records);
        return false;
      }
      // A rebalance during the write may have moved partitions away: not ours to commit.
      const offsets = ledger.committable(snapshot);
      metrics.batchPhaseSeconds.observe({ phase: "log" }, (performance.now() - started) / 1000);
      if (offsets.length === 0) return true;
      const commitStarted = performance.now();
      try {
        await consumer.commitOffsets(
          offsets.map(([partition, offset]) => ({
            topic: options.topic,
            partition,
            offset: offset.toString(),
          })),
        );
      } catch (err) {
        // Typically a rebalance in progress: the offsets stay resolved and go with the next
        // commit, or the partition's next owner redoes them (idempotently).
        log.warn("commit failed; will retry", { err });
        return true;
      }
      ledger.committed(offsets);
      metrics.batchPhaseSeconds.observe(
        { phase: "commit" },
        (performance.now() - commitStarted) / 1000,
      );
      lastCommitAt = Date.now();
      return true;
    });
    const mine = committing;
    void mine.finally(() => {
      if (committing === mine) flushing = false;
    });
    return mine;
  };

  /**
   * Claims a later copy of an eventId again, after its first copy's outcome: done (a duplicate,
   * skipped), or claimed afresh when the first failed and released it. False, with the reason on
   * the item, when the store cannot answer.
   */
  const claimAgain = async (partition: number, item: Item): Promise<boolean> => {
    const n = item.notification as Notification;
    const keys = (item.route as Route).channels.map((ch) => deliveryKey(n, ch));
    try {
      item.claims = await store.claim(keys);
      return true;
    } catch (err) {
      if (options.failOpen) return true;
      log.warn("idempotency store unavailable; pausing", {
        partition,
        err: toFandaError("claim", err),
      });
      item.reason = "store-unavailable";
      return false;
    }
  };

  /** The keys an item holds a claim on (its channels claimed, not done or busy). */
  const claimedKeys = (item: Item) =>
    (item.route as Route).channels.flatMap((ch, i) =>
      item.claims?.[i] === "claimed" ? [deliveryKey(item.notification as Notification, ch)] : [],
    );

  /**
   * Renews the claims of `waiting` items until the returned function is called; an item any
   * of whose claims is no longer ours goes into `lost`, to be claimed again before its send.
   */
  const renewClaims = (waiting: Set<Item>, lost: Set<Item>): (() => void) => {
    if (!renewal) return () => {};
    const every = renewal.every ?? repeatEvery;
    return every(() => {
      const items = [...waiting].map((item) => ({ item, keys: claimedKeys(item) }));
      const keys = items.flatMap((i) => i.keys);
      if (keys.length === 0) return;
      void store.extend(keys).then(
        (held) => {
          let at = 0;
          for (const { item, keys } of items) {
            if (held.slice(at, at + keys.length).some((h) => h !== true)) lost.add(item);
            at += keys.length;
          }
        },
        () => {},
      );
    }, renewal.intervalMs);
  };

  // Commits what is resolved even when no batch arrives (idle topic, paused partitions).
  let ticker: ReturnType<typeof setInterval> | undefined;

  // Final messages behind a not-final one of their batch: skipped when the batch comes back.
  const finalAhead = createFinalAhead();
  const eachBatch = async (payload: EachBatchPayload) => {
    const { batch, resolveOffset } = payload;
    const { topic, partition } = batch;
    if (batch.messages.length === 0) return;
    metrics.batchSize.observe(batch.messages.length);
    const inFlight = { partition, since: Date.now() };
    state.inFlight = [...(state.inFlight ?? []), inFlight];
    // kafkajs sends one only when heartbeatInterval has passed since the last; asking more
    // often costs nothing.
    const beat = setInterval(
      () => void payload.heartbeat().catch(() => {}),
      Math.min(1000, heartbeatInterval),
    );
    const records: DeliveryRecord[] = [];
    const items: Item[] = batch.messages.map((message) => ({
      message,
      final: finalAhead.isFinal(partition, message),
    }));
    // Each message's work runs in its own trace (its log lines carry its trace id).
    const traced = traceBatch(topic, partition, options.groupId, items);
    let reason: Reason | undefined;
    let stopRenewal = () => {};
    let mark = performance.now();
    const phase = (name: string) => {
      const now = performance.now();
      metrics.batchPhaseSeconds.observe({ phase: name }, (now - mark) / 1000);
      mark = now;
    };
    try {
      // 1. decode; poison goes to the DLQ and is final.
      for (const item of items) {
        if (item.final) continue; // final on an earlier pass: nothing to do but commit it
        await runInContext(traced.contextOf(item), () => handler.decode(topic, partition, item));
        traced.decoded(item);
      }
      phase("decode");
      // 2. claim every delivery of the batch at once.
      const pending = items.filter((i) => i.notification && i.route);
      const keys = pending.flatMap((i) =>
        (i.route as Route).channels.map((ch) => deliveryKey(i.notification as Notification, ch)),
      );
      let states: ClaimState[] | undefined;
      try {
        states = await store.claim(keys);
      } catch (err) {
        if (!options.failOpen) {
          log.warn("idempotency store unavailable; pausing", {
            partition,
            err: toFandaError("claim", err),
          });
          reason = "store-unavailable";
        } else {
          log.warn("idempotency store unavailable; delivering without it (failOpen)", {
            partition,
          });
          states = keys.map(() => "claimed" as const);
        }
      }
      phase("claim");
      if (states) {
        let at = 0;
        for (const i of pending) {
          const count = (i.route as Route).channels.length;
          i.claims = states.slice(at, at + count);
          at += count;
        }
        // Claims stay ours while their messages wait for their turn (see claimRenewal).
        const waiting = new Set(pending);
        const lost = new Set<Item>();
        stopRenewal = renewClaims(waiting, lost);
        // 3. one key's messages in order, different keys concurrently. A later copy of an
        // eventId joins its first copy's sequence: the batch's claim is ours for both, so only
        // the first may send, and the copy is claimed again once the first's outcome is known.
        const byKey = new Map<string, Item[]>();
        const firstOf = new Map<string, string>();
        const copies = new Set<Item>();
        for (const i of pending) {
          const eventId = (i.notification as Notification).eventId;
          let key = firstOf.get(eventId);
          if (key === undefined) {
            key = i.message.key?.toString("utf8") ?? `offset:${i.message.offset}`;
            firstOf.set(eventId, key);
          } else {
            copies.add(i);
          }
          const list = byKey.get(key) ?? [];
          list.push(i);
          byKey.set(key, list);
        }
        await eachLimited([...byKey.values()], concurrency, async (sequence) => {
          for (const item of sequence) {
            if (!payload.isRunning() || payload.isStale()) return;
            const claimed = await runInContext(
              traced.contextOf(item),
              async () =>
                !(copies.has(item) || lost.has(item)) || (await claimAgain(partition, item)),
            );
            if (!claimed) return;
            await runInContext(traced.contextOf(item), () =>
              handler.handle(topic, partition, item, records),
            );
            waiting.delete(item);
            if (!item.final) return;
          }
        });
      }
      phase("deliver");
      // 4. the final prefix's offsets, after its records are buffered.
      ledger.buffer(records);
      let blocked = false;
      for (const item of items) {
        if (blocked) {
          if (item.final) finalAhead.remember(partition, item.message);
          continue;
        }
        if (!item.final) {
          reason ??= item.reason ?? "shutdown";
          blocked = true;
          continue;
        }
        resolveOffset(item.message.offset);
        ledger.resolve(partition, item.message.offset);
        finalAhead.forget(partition, item.message.offset);
      }
    } catch (err) {
      // Each message's own faults are its outcome (the handler never throws); this is the
      // batch's bookkeeping. Never a crash: the partition pauses and the batch comes back.
      log.error("batch failed; partition paused, the batch is tried again", { partition, err });
      reason ??= "processing-error";
    } finally {
      stopRenewal();
      traced.end(reason);
      // Commit on an interval or when records pile up, in the background so the database's
      // write does not hold this partition. Wait for it when this batch stopped early or the
      // consumer is stopping (what reached a final outcome must not be redone), and when the
      // buffer is far behind (the database is slow or down: that is backpressure). Heartbeats
      // go on while it waits: an outage longer than the session timeout must not evict us.
      try {
        const mustWait =
          reason !== undefined || !payload.isRunning() || ledger.buffered() >= flushRecords * 5;
        if (mustWait) {
          if (!(await flushAndCommit(payload.isRunning))) reason ??= "audit-unavailable";
        } else if (
          !flushing &&
          (Date.now() - lastCommitAt >= commitIntervalMs || ledger.buffered() >= flushRecords)
        ) {
          void flushAndCommit(payload.isRunning);
        }
      } catch (err) {
        log.error("flush failed; partition paused", { partition, err });
        reason ??= "audit-unavailable";
      } finally {
        clearInterval(beat);
      }
      state.lastBatchAt = Date.now();
      state.inFlight = (state.inFlight ?? []).filter((b) => b !== inFlight);
      state.notFinal = (state.notFinal ?? []).filter((p) => p.partition !== partition);
      if (reason) state.notFinal.push({ partition, reason, at: Date.now() });
    }
    if (reason && payload.isRunning() && !abortSignal.aborted) {
      const streak = (pauseStreak.get(partition) ?? 0) + 1;
      pauseStreak.set(partition, streak);
      const ms = Math.min(pauseMax, pauseMin * 2 ** (streak - 1));
      metrics.deferrals.inc({ reason });
      const resume = payload.pause();
      const until = new Date(Date.now() + ms).toISOString();
      state.paused = [
        ...state.paused.filter((p) => p.partition !== partition),
        { partition, until, reason },
      ];
      log.warn("outcome not final; partition paused", { partition, reason, resumeInMs: ms });
      setTimeout(() => {
        state.paused = state.paused.filter((p) => p.partition !== partition);
        resume();
      }, ms).unref?.();
    } else if (!reason) {
      pauseStreak.delete(partition);
    }
  };

  /**
   * Waits until the topic and its DLQ topic both exist, saying which is missing in the state
   * (readiness shows it) and the log. Without the DLQ topic a failed message could not be
   * dead-lettered, and the partition would stall on it, so nothing is consumed before.
   * @returns false when stop() came first
   */
  const waitForTopics = async (): Promise<boolean> => {
    const wanted = [options.topic, dlqTopicOf(options.topic)];
    const admin = options.kafka.admin();
    try {
      for (;;) {
        if (stopping) return false;
        try {
          await admin.connect();
          const existing = new Set(await admin.listTopics());
          state.missingTopics = wanted.filter((t) => !existing.has(t));
          if (state.missingTopics.length === 0) return true;
          log.error("topic missing; waiting for it before consuming", {
            missing: state.missingTopics,
            hint: "create it (scripts/topics.ts) or set KAFKA_CREATE_TOPICS=true",
          });
        } catch (err) {
          log.warn("cannot list topics; trying again", { err });
        }
        await sleep(topicCheckMs, undefined, { signal: stopped.signal }).catch(() => {});
      }
    } finally {
      await admin.disconnect().catch(() => {});
    }
  };

  return {
    async start() {
      if (!(await waitForTopics())) return;
      await consumer.connect();
      await consumer.subscribe({
        topics: [options.topic],
        fromBeginning: options.fromBeginning ?? true,
      });
      // stop() came while connecting: it has disconnected (or will); do not start running.
      if (stopping) return;
      state.running = true;
      started = true;
      ticker = setInterval(
        () => {
          if (state.running && (ledger.uncommitted().length > 0 || ledger.buffered() > 0)) {
            void flushAndCommit(() => state.running);
          }
        },
        Math.max(100, commitIntervalMs),
      );
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: partitionsConcurrently,
        eachBatch,
      });
    },
    async stop() {
      stopping = true;
      stopped.abort();
      clearInterval(ticker);
      // What is resolved so far, while still a member; a batch in flight commits its own
      // on the way out (it sees isRunning() false).
      await flushAndCommit(() => !abortSignal.aborted);
      await consumer.disconnect();
      state.running = false;
      state.joined = false;
    },
    state: () => ({
      ...state,
      partitions: [...state.partitions],
      paused: [...state.paused],
      notFinal: [...(state.notFinal ?? [])],
      inFlight: [...(state.inFlight ?? [])],
    }),
  };
}
