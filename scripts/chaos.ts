/**
 * Chaos run: while events flow through the real pipeline, break things on a schedule, then
 * prove from the webhook sink's record, the dead-letter topic and the delivery log that
 * nothing was lost, and count duplicates. Loopback only, bounded in count and time.
 *
 *   bun scripts/chaos.ts [--events 100000] [--rate 2000] [--timeout 600] [--redis aof|empty]
 *
 * Needs the local stack (scripts/stack up; Kafka is restarted through it, so it must have
 * been started by it), redis-server on PATH (a private instance is started and restarted),
 * and MariaDB (a database of its own). The processor runs as a supervised child process:
 * when it dies, it is started again, as Kubernetes would.
 *
 * Schedule (seconds after the first event): SIGKILL the processor at 5, 15, 25, 35 and 55;
 * webhook answers 500 from 10 to 15 and 429 (Retry-After: 1) from 30 to 35; Redis restarted
 * at 20; Kafka restarted at 40. At the end, dead letters are replayed (as on-call would) and
 * the run waits until every event is delivered.
 *
 * `--redis aof` (default) restarts Redis with its append-only file, as a production Redis that
 * survives a node loss (a replica promoted, or persistence) keeps its keys; `--redis empty`
 * restarts it with nothing, the harsher double fault whose duplicates docs/benchmarks.md
 * explains.
 */
import mysql from "mysql2/promise";
import type { Notification } from "../core/contract.ts";
import { createPublisher, dlqTopicOf, ensureTopics } from "../core/kafka.ts";
import { createLogger } from "../core/log.ts";
import { replayDlq } from "../processor/src/replay.ts";
import { toNotification } from "../producer/src/s3-event.ts";
import {
  freePort,
  localKafka,
  localProcessorEnv,
  startPrivateRedis,
} from "../test/support/local.ts";
import { checkOptions, orExit, parseOptions } from "./bench/args.ts";

const values = orExit(() =>
  parseOptions({
    events: { default: "100000" },
    rate: { default: "2000" },
    timeout: { default: "600" },
    redis: { default: "aof" },
  }),
);
const { ints, lists } = orExit(() =>
  checkOptions(
    {
      events: { value: values.events, min: 100, max: 1_000_000 },
      rate: { value: values.rate, min: 10, max: 20_000 },
      timeout: { value: values.timeout, min: 30, max: 3600 },
    },
    { redis: { value: values.redis, allowed: ["aof", "empty"], single: true } },
  ),
);
const { events, rate, timeout: timeoutS } = ints;
const redisMode = lists.redis[0] as "aof" | "empty";

const root = `${import.meta.dir}/..`;
const run = crypto.randomUUID().slice(0, 8);
const topic = `fanda-chaos-${run}`;
const database = `fanda_chaos_${run}`;
const mysqlServer = process.env.MYSQL_SERVER_URL ?? "mysql://root@127.0.0.1:3306";
const logger = createLogger({ level: "error", ns: "chaos" });
const started = Date.now();
const say = (msg: string) =>
  console.log(`[chaos +${((Date.now() - started) / 1000).toFixed(1)}s] ${msg}`);
const deadline = started + timeoutS * 1000;

// The webhook sink, with fault windows.
const received = new Map<string, number>();
/** Duplicates by the 5-second window they arrived in, to tell which fault caused them. */
const duplicatesAt = new Map<number, number>();
const dupIndices: number[] = [];
let deliveries = 0;
let fault: { status: number; until: number } | undefined;
const sink = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  async fetch(req) {
    const n = (await req.json()) as Notification;
    if (fault && Date.now() < fault.until) {
      return new Response("chaos", {
        status: fault.status,
        headers: fault.status === 429 ? { "retry-after": "1" } : {},
      });
    }
    deliveries++;
    const before = received.get(n.eventId) ?? 0;
    received.set(n.eventId, before + 1);
    if (before > 0) {
      dupIndices.push(Number(n.objectKey.slice(n.objectKey.lastIndexOf("/") + 1, -4)));
      const window = Math.floor((Date.now() - started) / 5000) * 5;
      duplicatesAt.set(window, (duplicatesAt.get(window) ?? 0) + 1);
    }
    return new Response(null, { status: 204 });
  },
});

// A private Redis we can restart.
const redis = await startPrivateRedis({ persistence: redisMode === "aof" ? "aof" : "none" });

const conn = await mysql.createConnection(mysqlServer);
await conn.query(`CREATE DATABASE \`${database}\``);
await conn.end();

const kafka = localKafka("fanda-chaos", { topic });
await ensureTopics(kafka, topic, { partitions: 6 });

// The processor, supervised.
const httpPort = await freePort();
let processor: ReturnType<typeof Bun.spawn> | undefined;
let restarts = 0;
let stopping = false;
const startProcessor = () => {
  processor = Bun.spawn(["bun", "processor/src/main.ts"], {
    cwd: root,
    env: localProcessorEnv(
      { topic, port: httpPort, redisUrl: redis.url, mysqlUrl: `${mysqlServer}/${database}` },
      {
        ENABLED_CHANNELS: "webhook",
        WEBHOOK_URL: `http://127.0.0.1:${sink.port}/notify`,
        KAFKA_SESSION_TIMEOUT_MS: "6000",
        // Claims keep their production TTL (120 s): a killed processor's claims are freed by
        // its lapsed liveness key, which is what this run exercises.
        IDEMPOTENCY_OWNER_TTL_MS: "5000",
        IDEMPOTENCY_DONE_TTL_MS: "3600000",
        DELIVERY_MAX_ATTEMPTS: "5",
        RETRY_BASE_MS: "50",
        RETRY_MAX_MS: "1000",
        PAUSE_MIN_MS: "500",
        PAUSE_MAX_MS: "2000",
        LOG_LEVEL: "error",
      },
    ),
    stdout: "ignore",
    stderr: "ignore",
  });
  const me = processor;
  void me.exited.then((code) => {
    if (stopping || processor !== me) return;
    restarts++;
    say(`processor exited (${code}); supervisor restarts it`);
    setTimeout(startProcessor, 1000);
  });
};
startProcessor();

// Events flow at `rate`/s; a failed publish is retried (as Lambda retries an invocation).
const sent: string[] = [];
let seq = 0;
const producing = (async () => {
  const publisher = createPublisher({ kafka, topic, maxBatchMessages: 1000 });
  for (;;) {
    try {
      await publisher.connect();
      break;
    } catch {
      await Bun.sleep(500);
    }
  }
  const chunk = Math.max(1, Math.floor(rate / 10));
  const t0 = performance.now();
  while (seq < events) {
    const batch = Array.from({ length: Math.min(chunk, events - seq) }, () => {
      const i = seq++;
      return toNotification(
        {
          bucket: "fanda-chaos",
          key: `chaos/${run}/${i}.txt`,
          eventName: "ObjectCreated:Put",
          eventTime: new Date().toISOString(),
          sequencer: i.toString(16).padStart(16, "0"),
        },
        "general",
      );
    });
    for (;;) {
      try {
        await publisher.publish(batch);
        break;
      } catch {
        await Bun.sleep(500);
        await publisher.connect().catch(() => {});
      }
    }
    for (const n of batch) sent.push(n.eventId);
    const due = t0 + (seq / rate) * 1000;
    const wait = due - performance.now();
    if (wait > 0) await Bun.sleep(wait);
  }
  await publisher.disconnect().catch(() => {});
})();

const at = (s: number) => Bun.sleep(Math.max(0, started + s * 1000 - Date.now()));
const kill = async (s: number, n: number) => {
  await at(s);
  say(`SIGKILL processor (#${n})`);
  processor?.kill("SIGKILL");
};
const stack = (cmd: "up" | "down") =>
  Bun.spawn([`${root}/scripts/stack`, cmd], { stdout: "ignore", stderr: "ignore" }).exited;

const schedule = (async () => {
  await kill(5, 1);
  await at(10);
  say("webhook answers 500 for 5 s");
  fault = { status: 500, until: Date.now() + 5000 };
  await kill(15, 2);
  await at(20);
  say(`Redis SIGKILLed; restarted in 2 s (${redisMode === "aof" ? "with its data" : "empty"})`);
  await redis.kill();
  await Bun.sleep(2000);
  redis.start();
  await kill(25, 3);
  await at(30);
  say("webhook answers 429 (Retry-After: 1) for 5 s");
  fault = { status: 429, until: Date.now() + 5000 };
  await kill(35, 4);
  await at(40);
  say("Kafka restart (scripts/stack down, up)");
  await stack("down");
  const code = await stack("up");
  say(`Kafka back (stack up exited ${code})`);
  await kill(55, 5);
})();

await Promise.all([producing, schedule]);
say(`all ${events} events published; waiting for delivery`);

// Dead letters are replayed the way on-call would, until everything is delivered.
const lost = () => sent.filter((id) => !received.has(id));
let replayed = 0;
let dlqSeen = 0;
while (lost().length > 0 && Date.now() < deadline) {
  await Bun.sleep(5000);
  const missing = lost().length;
  say(`${received.size}/${events} delivered, ${missing} missing, ${restarts} supervisor restarts`);
  if (missing > 0) {
    const publisher = createPublisher({ kafka, topic });
    try {
      await publisher.connect();
      const report = await replayDlq({ kafka, topic, publisher, logger, timeoutMs: 30_000 });
      if (report.scanned > dlqSeen) {
        say(`replayed ${report.replayed} dead letter(s) (${report.scanned} in the DLQ)`);
        replayed += report.replayed;
        dlqSeen = report.scanned;
      }
    } catch (err) {
      say(`replay failed: ${String(err)}`);
    } finally {
      await publisher.disconnect().catch(() => {});
    }
  }
}

stopping = true;
processor?.kill("SIGTERM");
await processor?.exited;
const db = await mysql.createConnection(`${mysqlServer}/${database}`);
const [rows] = await db.query(
  "SELECT COUNT(DISTINCT event_id) AS delivered, SUM(attempts) AS attempts FROM fanda_deliveries WHERE status = 'delivered'",
);
await db.query(`DROP DATABASE \`${database}\``);
await db.end();
await redis.stop();
await sink.stop(true);
const admin = kafka.admin();
await admin.connect().catch(() => {});
await admin.deleteTopics({ topics: [topic, dlqTopicOf(topic)] }).catch(() => {});
await admin.disconnect().catch(() => {});

const missing = lost();
// A SIGKILL can only repeat sends that were in flight: the processor's concurrency bounds them.
const inFlightBound =
  Number(process.env.PROCESSOR_CONCURRENCY ?? 32) * Number(process.env.PARTITIONS_CONCURRENCY ?? 3);
const duplicates = deliveries - received.size;
const logRow = (rows as { delivered: number }[])[0];
console.log(`
### Chaos run (${new Date().toISOString().slice(0, 10)})

\`bun scripts/chaos.ts --events ${events} --rate ${rate} --timeout ${timeoutS} --redis ${redisMode}\`

| measure | value |
|---|---|
| events published | ${sent.length} |
| delivered (distinct) | ${received.size} |
| lost | **${missing.length}** |
| webhook deliveries in total | ${deliveries} |
| duplicate deliveries | ${duplicates} (${((duplicates / Math.max(1, events)) * 100).toFixed(3)}%) |
| duplicates by arrival window (s: count) | ${
  [...duplicatesAt]
    .sort((a, b) => a[0] - b[0])
    .map(([w, c]) => `${w}: ${c}`)
    .join(", ") || "none"
} |
| duplicated event indices (min–max) | ${dupIndices.length > 0 ? `${Math.min(...dupIndices)}–${Math.max(...dupIndices)}` : "none"} |
| dead letters replayed | ${replayed} (DLQ held ${dlqSeen}) |
| processor SIGKILLs / supervisor restarts | 5 / ${restarts} |
| sends in flight per crash, at most (PROCESSOR_CONCURRENCY × PARTITIONS_CONCURRENCY) | ${inFlightBound} |
| delivery log: distinct events delivered | ${logRow?.delivered} |
| wall time | ${((Date.now() - started) / 1000).toFixed(0)} s |
`);
process.exit(missing.length === 0 ? 0 : 1);
