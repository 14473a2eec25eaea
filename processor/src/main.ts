/**
 * Composition root of the processor: configuration → clients (Kafka, idempotency store,
 * delivery log, channels) → consumer + HTTP server, and the shutdown sequence.
 * Run: `bun processor/src/main.ts`.
 *
 * SIGTERM/SIGINT: readiness goes false, the consumer stops fetching and finishes its
 * in-flight batch (aborted after SHUTDOWN_TIMEOUT_MS, leaving it uncommitted), offsets are
 * committed, clients disconnect, exit 0. A fatal consumer crash exits 1 so Kubernetes
 * restarts the pod.
 */
import { setMaxListeners } from "node:events";
import { createKafka, ensureTopics } from "../../core/kafka.ts";
import { createLogger, defaultSink, type Logger } from "../../core/log.ts";
import { startTracing } from "../../core/tracing.ts";
import { createChannels } from "./channels/index.ts";
import { loadProcessorConfig, type ProcessorConfig } from "./config.ts";
import { createNotificationConsumer, stallReason } from "./consumer.ts";
import { createMysqlLog, createSqliteLog, type DeliveryLog } from "./delivery-log/index.ts";
import { createDispatcher } from "./dispatch.ts";
import { createDeadLetterQueue } from "./dlq.ts";
import { ConfigError } from "./errors.ts";
import { createHttpApp } from "./http.ts";
import {
  createMemoryStore,
  createRedisStore,
  type IdempotencyStore,
  withDeliveryLogFallback,
} from "./idempotency.ts";
import { createLagMonitor } from "./lag.ts";
import { createMetrics } from "./metrics.ts";
import { createRedisRateLimits } from "./rate-limit-redis.ts";
import { createRecent } from "./recent.ts";
import { createRouter } from "./routing.ts";
import { isEntryPoint, serveHttp } from "./runtime.ts";
import { createStatusReport } from "./status-report.ts";
import { startWatchdog } from "./watchdog.ts";

/** A started processor. */
export interface RunningProcessor {
  /** The HTTP port actually bound (useful with PORT=0). */
  port: number;
  /** Graceful stop; resolves when everything is closed. Safe to call twice. */
  stop(): Promise<void>;
}

/** Test and embedding hooks for {@link startProcessor}. */
export interface ProcessorOverrides {
  logger?: Logger;
  fetch?: typeof fetch;
  /** Where the log channel writes (stdout by default). */
  write?: (line: string) => void;
  /** Called on a fatal consumer crash (default: exit 1). */
  onFatal?: (error: Error) => void;
  defaultMetrics?: boolean;
  /**
   * Aborted by a signal that may arrive while start-up is still under way (waiting for a
   * topic, joining the group): the processor stops as soon as it can, draining what it began.
   */
  shutdown?: AbortSignal;
}

/** Builds the idempotency store the configuration asks for. */
function idempotencyStore(config: ProcessorConfig): IdempotencyStore {
  const ttl = {
    claimTtlMs: config.claimTtlMs,
    doneTtlMs: config.doneTtlMs,
    ownerTtlMs: config.ownerTtlMs,
  };
  return config.redisUrl
    ? createRedisStore({ url: config.redisUrl, ...ttl })
    : createMemoryStore({ ...ttl, maxEntries: config.memoryMaxKeys });
}

/** Builds the delivery log the configuration asks for. */
function openDeliveryLog(config: ProcessorConfig): DeliveryLog {
  return config.mysqlUrl
    ? createMysqlLog({ url: config.mysqlUrl })
    : createSqliteLog({ path: config.sqlitePath });
}

/**
 * Starts consumer and HTTP server from a configuration.
 * @throws ConfigError for an invalid channel or routing setup; the delivery log's migration
 *   error when the database cannot be reached at start-up (so the pod restarts, visibly)
 */
export async function startProcessor(
  config: ProcessorConfig,
  overrides: ProcessorOverrides = {},
): Promise<RunningProcessor> {
  const recent = createRecent();
  const logger =
    overrides.logger ??
    createLogger({ level: config.logLevel, ns: "fanda.processor", sink: recent.sink(defaultSink) });
  const metrics = createMetrics({ defaultMetrics: overrides.defaultMetrics ?? true });
  const version = process.env.FANDA_VERSION ?? "dev";
  const startedAt = new Date().toISOString();
  metrics.up.set({ version }, 1);
  // Provider limits (Slack per channel, the SES send rate) are shared by every pod through the
  // store's Redis; without Redis there is one process, which paces itself.
  const limits = config.redisUrl
    ? createRedisRateLimits({
        url: config.redisUrl,
        onFallback: (key, err) =>
          logger.warn("shared rate limit unavailable; pacing this pod alone", { key, err }),
      })
    : undefined;
  // Each channel loads and checks its own templates here, before anything is consumed.
  const channels = createChannels(config.channels, config.channelSettings, {
    ...(config.templatesDir ? { templatesDir: config.templatesDir } : {}),
    logger,
    onRateLimitWait: (channel, ms) => metrics.rateLimitWaitSeconds.inc({ channel }, ms / 1000),
    onSlackPosted: (n) => metrics.slackNotificationsPerMessage.observe(n),
    ...(limits ? { rateLimiter: limits.limiter } : {}),
    ...(overrides.fetch ? { fetch: overrides.fetch } : {}),
    ...(overrides.write ? { write: overrides.write } : {}),
  });
  const route = createRouter({
    enabled: config.channels,
    ...(config.routing ? { rules: config.routing } : {}),
  });
  // Credentials and provider limits are checked before consuming anything.
  await Promise.all(channels.map((c) => c.connect?.()));
  const log = openDeliveryLog(config);
  await log.migrate();
  // The delivery log answers for done marks the store has lost (Redis emptied by a failover).
  const store = withDeliveryLogFallback(idempotencyStore(config), log, {
    onUnavailable: (err) =>
      logger.warn("delivery log unavailable for the idempotency check; claims stand", { err }),
    onRecovered: (keys) =>
      logger.warn("idempotency store had forgotten deliveries the log knows", {
        count: keys.length,
      }),
  });
  const kafka = createKafka(config.kafka, { logger });
  if (config.createTopics) {
    const created = await ensureTopics(kafka, config.kafka.topic);
    if (created.length > 0) logger.info("topics created", { created });
  }
  const hardStop = new AbortController();
  // Every in-flight send, and every retry wait, listens on this signal until it ends: allow as
  // many as can be in flight before Node's leak warning, which then still catches real growth.
  const inFlight = config.concurrency * config.partitionsConcurrency * config.channels.length;
  setMaxListeners(inFlight * 2 + 10, hardStop.signal);
  const dispatch = createDispatcher({
    channels,
    logger,
    maxAttempts: config.maxAttempts,
    retryBaseMs: config.retryBaseMs,
    retryMaxMs: config.retryMaxMs,
    breakerThreshold: config.breakerThreshold,
    onRetry: (channel) => metrics.retries.inc({ channel }),
    onMisconfigured: (channel, setting, on) =>
      metrics.channelMisconfigured.set({ channel, setting }, on ? 1 : 0),
  });
  const dlq = createDeadLetterQueue({
    kafka,
    topic: config.kafka.topic,
    onRenew: (err) =>
      logger.warn("Kafka lost the DLQ producer's sequence state; dead-lettering on a new one", {
        err,
      }),
  });
  let draining = false;
  const consumer = createNotificationConsumer({
    kafka,
    topic: config.kafka.topic,
    groupId: config.groupId,
    dispatch,
    // A message's claims stay ours until it is handled: while it waits behind others of its
    // batch and while its send runs, however long that outlasts the claim TTL.
    claimRenewal: { intervalMs: Math.max(1, Math.floor(config.claimTtlMs / 3)) },
    route,
    store,
    deliveryLog: log,
    dlq,
    logger,
    metrics,
    sessionTimeoutMs: config.sessionTimeoutMs,
    concurrency: config.concurrency,
    partitionsConsumedConcurrently: config.partitionsConcurrency,
    pauseMinMs: config.pauseMinMs,
    pauseMaxMs: config.pauseMaxMs,
    commitIntervalMs: config.commitIntervalMs,
    failOpen: config.idempotencyFailOpen,
    abortSignal: hardStop.signal,
    onFatal:
      overrides.onFatal ??
      ((error) => {
        logger.error("fatal consumer error, exiting", { err: error });
        process.exit(1);
      }),
  });
  const lag = createLagMonitor({
    kafka,
    topic: config.kafka.topic,
    groupId: config.groupId,
    metrics,
    logger,
    partitions: () => consumer.state().partitions,
    reasonOf: (partition) => stallReason(consumer.state(), partition),
    intervalMs: config.lagIntervalMs,
  });
  const watchdog = startWatchdog({ stallMs: config.livenessStallMs });
  const stallGauge = setInterval(
    () => metrics.eventLoopStallSeconds.set(watchdog.takeMaxLateMs() / 1000),
    5000,
  );
  stallGauge.unref?.();
  const report = createStatusReport({
    version,
    startedAt,
    topic: config.kafka.topic,
    groupId: config.groupId,
    metrics,
    consumerState: consumer.state,
    lag,
    recent,
    store,
    deliveryLog: log,
    dispatch,
    channels,
  });
  const app = createHttpApp({
    consumerState: consumer.state,
    dependencies: report.dependencies,
    watchdog,
    status: report.snapshot,
    registry: metrics.registry,
    draining: () => draining,
    idempotencyFailOpen: config.idempotencyFailOpen,
    version,
  });
  // Trace context from here on; spans are exported only with an OTLP endpoint configured.
  const tracing = await startTracing(config.tracing, {
    onError: (err) => logger.warn("trace export failed", { err }),
  });
  const server = await serveHttp({ hostname: config.host, port: config.port, fetch: app.fetch });
  let lagStarted = false;
  let stopped: Promise<void> | undefined;
  const stop = () => {
    stopped ??= (async () => {
      draining = true;
      logger.info("draining");
      const timer = setTimeout(
        () => hardStop.abort(new Error("shutdown timeout")),
        config.shutdownTimeoutMs,
      );
      try {
        await consumer.stop();
      } finally {
        clearTimeout(timer);
        watchdog.stop();
        clearInterval(stallGauge);
        report.stop();
        if (lagStarted) await lag.stop();
        await dlq.disconnect().catch((err) => logger.warn("dlq disconnect failed", { err }));
        await Promise.all(channels.map((c) => c.close()));
        await limits?.close();
        await store.close().catch((err) => logger.warn("idempotency store close failed", { err }));
        await log.close().catch((err) => logger.warn("delivery log close failed", { err }));
        await server.stop();
        // The last spans (the drained batch, the final log write) go out before exit.
        await tracing.shutdown();
        logger.info("stopped");
      }
    })();
    return stopped;
  };
  if (overrides.shutdown?.aborted) void stop();
  else overrides.shutdown?.addEventListener("abort", () => void stop(), { once: true });

  // The HTTP server answers from here on (readiness says why it is not ready yet), while the
  // DLQ producer connects (on a fresh broker that waits for Kafka's internal topics).
  if (!stopped) await dlq.connect();
  // A stop during the wait for the topics ends it; start() then returns without running.
  if (!stopped) await consumer.start();
  if (!stopped) {
    await lag.start();
    lagStarted = true;
    logger.info("processor started", {
      http: `http://${config.host}:${server.port}`,
      topic: config.kafka.topic,
      groupId: config.groupId,
      channels: config.channels,
      idempotency: store.kind,
      deliveryLog: log.kind,
    });
  }
  return { port: server.port, stop };
}

async function main(): Promise<void> {
  let config: ProcessorConfig;
  try {
    config = loadProcessorConfig();
  } catch (err) {
    console.error(err instanceof ConfigError ? err.message : String(err));
    process.exit(2);
  }
  // The handlers come first: a SIGTERM during start-up (a rollout while the group is joined
  // but the lag monitor not yet started) must drain like any other, not kill the process.
  const shutdown = new AbortController();
  let starting: Promise<RunningProcessor> | undefined;
  const onSignal = (signal: string) => {
    if (shutdown.signal.aborted) return;
    shutdown.abort();
    void (async () => {
      try {
        await (await (starting as Promise<RunningProcessor>)).stop();
        process.exit(0);
      } catch (err) {
        console.error(
          JSON.stringify({ level: "error", msg: `stop after ${signal} failed`, err: String(err) }),
        );
        process.exit(1);
      }
    })();
  };
  process.once("SIGTERM", () => onSignal("SIGTERM"));
  process.once("SIGINT", () => onSignal("SIGINT"));
  starting = startProcessor(config, { shutdown: shutdown.signal });
  await starting;
}

if (isEntryPoint(import.meta)) {
  main().catch((err) => {
    console.error(JSON.stringify({ level: "error", msg: "processor failed", err: String(err) }));
    process.exit(1);
  });
}
