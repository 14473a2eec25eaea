/**
 * Chaos run: while events flow through the real pipeline, break one thing the way it breaks
 * in production (MSK, ElastiCache, the database, a receiver), then prove from the webhook
 * sink's record, the dead-letter topic and the delivery log that nothing was lost, and count
 * duplicates and the time to recover. Loopback only, bounded in count and time.
 *
 *   bun scripts/chaos.ts [--scenario mixed] [--brokers 3] [--events N] [--rate N]
 *     [--timeout 600] [--redis aof|empty] [--tree DIR]
 *
 * Scenarios (seconds after the first event):
 * - `none`: no fault, the control.
 * - `mixed`: the processor SIGKILLed at 5, 15, 25, 35 and 55 (a supervisor restarts it, as
 *   Kubernetes would); the webhook answers 500 from 10 to 15 and 429 (Retry-After: 1) from 30
 *   to 35; Redis SIGKILLed at 20 and restarted (`--redis aof`: with its append-only file;
 *   `empty`: with nothing); Kafka restarted at 40 (with `--brokers 3`, all three nodes; with
 *   `--brokers 1` this step is skipped: the single broker is shared with the test suite).
 * - `leader-kill` (needs `--brokers 3`): from 8 s, three times: SIGKILL the broker leading the
 *   most partitions of the run's topic, start it again 10 s later (scripts/stack up --brokers
 *   3, which waits until its replicas are back in sync), 5 s pause.
 * - `rolling`: scale 1 → 3 processors (8 s), a rolling restart of all three by SIGTERM, one
 *   at a time, the replacement started first (maxSurge 1, maxUnavailable 0), then 3 → 1 by
 *   SIGTERM. Graceful: duplicates must be 0.
 * - `redis-failover`: Redis is a primary and a replica behind one endpoint (a proxy, as
 *   ElastiCache's primary endpoint is a DNS name). At 15 s the replica is promoted, the
 *   endpoint moves, and the old primary becomes a replica: connections still open to it get
 *   READONLY until the client reconnects.
 * - `db-down`: the delivery-log database reached through a proxy that drops every connection
 *   and refuses new ones from 10 to 70 s (MariaDB itself, shared, is not touched).
 * - `stalled-body`: from 10 to 30 s, one webhook request in 200 gets its headers (200) and
 *   then a body that stalls 60 s.
 *
 * At the end, dead letters are replayed (as on-call would) and the run waits until every
 * event is delivered or `--timeout` passes. It prints a table and one line of JSON (the
 * figures docs/benchmarks.md is built from), also appended to .cache/chaos/results.jsonl.
 *
 * `--tree DIR` runs the processor and the events' publisher from another checkout of the
 * repository (for example
 * `git archive <commit>` unpacked, with node_modules linked), to measure a given commit while
 * the working tree changes. Needs the local stack (scripts/stack up; with `--brokers 3` the
 * cluster is started if it is not running), redis-server on PATH and MariaDB (a database of
 * its own per run).
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import mysql from "mysql2/promise";
import type { Notification } from "../core/contract.ts";
import { createPublisher, dlqTopicOf, ensureTopics } from "../core/kafka.ts";
import { createLogger } from "../core/log.ts";
import { replayDlq } from "../processor/src/replay.ts";
import { toNotification } from "../producer/src/s3-event.ts";
import {
  freePort,
  LOCAL_BROKERS,
  LOCAL_CLUSTER_BROKERS,
  localKafka,
  localProcessorEnv,
  type PrivateRedis,
  type RedisPair,
  startPrivateRedis,
  startRedisPair,
  startTcpProxy,
  type TcpProxy,
} from "../test/support/local.ts";
import { checkOptions, orExit, parseOptions, UsageError } from "./bench/args.ts";
import { clusterKafka, ensureReplicatedTopics, placements } from "./kafka/cluster.ts";

const SCENARIOS = [
  "none",
  "mixed",
  "leader-kill",
  "rolling",
  "redis-failover",
  "db-down",
  "stalled-body",
] as const;
type Scenario = (typeof SCENARIOS)[number];
/** Defaults per scenario: long enough for the fault to happen while events flow. */
const SIZES: Record<Scenario, { events: number; rate: number }> = {
  none: { events: 40_000, rate: 800 },
  mixed: { events: 40_000, rate: 800 },
  "leader-kill": { events: 40_000, rate: 800 },
  rolling: { events: 40_000, rate: 800 },
  "redis-failover": { events: 40_000, rate: 800 },
  "db-down": { events: 40_000, rate: 500 },
  "stalled-body": { events: 40_000, rate: 800 },
};

const values = orExit(() =>
  parseOptions({
    scenario: { default: "mixed" },
    brokers: { default: "3" },
    events: {},
    rate: {},
    timeout: { default: "600" },
    redis: { default: "aof" },
    tree: {},
  }),
);
const scenarioName = (values.scenario ?? "mixed") as Scenario;
const sizes = SIZES[scenarioName] ?? SIZES.mixed;
const { ints, lists } = orExit(() =>
  checkOptions(
    {
      events: { value: values.events ?? String(sizes.events), min: 100, max: 1_000_000 },
      rate: { value: values.rate ?? String(sizes.rate), min: 10, max: 20_000 },
      timeout: { value: values.timeout, min: 30, max: 3600 },
    },
    {
      scenario: { value: values.scenario, allowed: SCENARIOS, single: true },
      brokers: { value: values.brokers, allowed: ["1", "3"], single: true },
      redis: { value: values.redis, allowed: ["aof", "empty"], single: true },
    },
  ),
);
const { events, rate, timeout: timeoutS } = ints;
const scenario = lists.scenario[0] as Scenario;
const brokerCount = Number(lists.brokers[0]);
const redisMode = lists.redis[0] as "aof" | "empty";
const root = `${import.meta.dir}/..`;
const tree = values.tree ?? root;
orExit(() => {
  const problems: string[] = [];
  if (scenario === "leader-kill" && brokerCount !== 3) {
    problems.push("--scenario leader-kill: needs --brokers 3 (the single broker is shared)");
  }
  if (!existsSync(`${tree}/processor/src/main.ts`)) {
    problems.push(`--tree: ${tree} has no processor/src/main.ts`);
  }
  if (problems.length > 0) throw new UsageError(problems);
});

// The events' publisher is the measured checkout's too: what reaches the topic is part of the run.
const { createPublisher: createTreePublisher } = (await import(
  `${tree}/core/kafka.ts`
)) as typeof import("../core/kafka.ts");
const cache = process.env.FANDA_CACHE ?? `${root}/.cache`;
const brokers = brokerCount === 3 ? LOCAL_CLUSTER_BROKERS : LOCAL_BROKERS;
const run = crypto.randomUUID().slice(0, 8);
const topic = `fanda-chaos-${run}`;
const database = `fanda_chaos_${run}`;
const mysqlServer = process.env.MYSQL_SERVER_URL ?? "mysql://root@127.0.0.1:3306";
const logger = createLogger({ level: "error", ns: "chaos" });
/** Processor settings that bound what a crash can repeat (the processor's defaults). */
const CONCURRENCY = 32;
const PARTITIONS_CONCURRENCY = 3;
const CHANNELS = 1;
/** Sends in flight in one processor at most: concurrency × partitions at once × channels. */
const IN_FLIGHT = CONCURRENCY * PARTITIONS_CONCURRENCY * CHANNELS;
const commit = (() => {
  if (existsSync(`${tree}/.commit`)) return readFileSync(`${tree}/.commit`, "utf8").trim();
  const r = Bun.spawnSync(["git", "rev-parse", "--short", "HEAD"], { cwd: tree });
  return `${r.stdout.toString().trim()}${tree === root ? "+worktree" : ""}`;
})();

const stack = async (...args: string[]) => {
  const p = Bun.spawn([`${root}/scripts/stack`, ...args], { stdout: "ignore", stderr: "pipe" });
  const code = await p.exited;
  if (code !== 0) throw new Error(`scripts/stack ${args.join(" ")}: ${await p.stderr.text()}`);
};
if (brokerCount === 3) {
  // Starts the cluster if it is not running; never touches the single broker.
  await stack("up", "--brokers", "3").catch((err) => {
    console.error(String(err));
    process.exit(1);
  });
}

const started = Date.now();
const t = () => (Date.now() - started) / 1000;
const say = (msg: string) => console.log(`[chaos +${t().toFixed(1)}s] ${msg}`);
const deadline = started + timeoutS * 1000;

/** Fault windows, seconds after start; `end` is when the fault was over (the node back). */
const faults: { name: string; start: number; end: number }[] = [];
const fault = async (name: string, during: () => Promise<void>) => {
  const start = t();
  say(`${name}: begins`);
  await during();
  faults.push({ name, start, end: t() });
  say(`${name}: over (${(t() - start).toFixed(1)} s)`);
};
const at = (s: number) => Bun.sleep(Math.max(0, started + s * 1000 - Date.now()));

// The webhook sink: records what arrived (a body read is a body received), with fault windows.
const received = new Map<string, number>();
/** When each event first arrived (ms since start). */
const firstAt = new Map<string, number>();
const duplicatesAt = new Map<number, number>();
let deliveries = 0;
let statusFault: { status: number; until: number } | undefined;
let stallFault: { until: number; every: number; stallMs: number } | undefined;
let requests = 0;
let stalled = 0;
const sink = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  idleTimeout: 0,
  async fetch(req) {
    const n = (await req.json()) as Notification;
    requests++;
    if (statusFault && Date.now() < statusFault.until) {
      return new Response("chaos", {
        status: statusFault.status,
        headers: statusFault.status === 429 ? { "retry-after": "1" } : {},
      });
    }
    deliveries++;
    const before = received.get(n.eventId) ?? 0;
    received.set(n.eventId, before + 1);
    if (before === 0) firstAt.set(n.eventId, Date.now() - started);
    else {
      const window = Math.floor(t() / 5) * 5;
      duplicatesAt.set(window, (duplicatesAt.get(window) ?? 0) + 1);
    }
    if (stallFault && Date.now() < stallFault.until && requests % stallFault.every === 0) {
      stalled++;
      const stallMs = stallFault.stallMs;
      // Headers and a first chunk now, the rest of the body after the stall.
      const body = new ReadableStream({
        start(c) {
          c.enqueue(new TextEncoder().encode("accepted"));
        },
        async pull(c) {
          await Bun.sleep(stallMs);
          c.close();
        },
      });
      return new Response(body, { status: 200, headers: { "content-type": "text/plain" } });
    }
    return new Response(null, { status: 204 });
  },
});

// Redis: a private server (mixed: killed and restarted), or a primary+replica pair.
let redis: PrivateRedis | undefined;
let redisPair: RedisPair | undefined;
if (scenario === "redis-failover") redisPair = await startRedisPair();
else redis = await startPrivateRedis({ persistence: redisMode === "aof" ? "aof" : "none" });
const redisUrl = redisPair?.url ?? (redis as PrivateRedis).url;

// MySQL: a database of its own, reached through a proxy in db-down.
const conn = await mysql.createConnection(mysqlServer);
await conn.query(`CREATE DATABASE \`${database}\``);
await conn.end();
let dbProxy: TcpProxy | undefined;
if (scenario === "db-down") dbProxy = await startTcpProxy(3306);
const processorMysql = dbProxy
  ? `mysql://root@127.0.0.1:${dbProxy.port}/${database}`
  : `${mysqlServer}/${database}`;

const kafka = localKafka("fanda-chaos", { topic, brokers });
if (brokerCount === 3) await ensureReplicatedTopics(kafka, topic, 6);
else await ensureTopics(kafka, topic, { partitions: 6 });

// Processors, supervised: one that exits without being asked is started again after 1 s.
interface Proc {
  id: number;
  child: ReturnType<typeof Bun.spawn>;
  retiring: boolean;
  port: number;
}
// Each processor's warnings and errors go to a file of its own, to read after a run.
const logDir = `${cache}/chaos/${run}`;
mkdirSync(logDir, { recursive: true });
const procs = new Map<number, Proc>();
let nextId = 1;
let restarts = 0;
let sigkills = 0;
let stopping = false;
const startProcessor = async (id = nextId++): Promise<Proc> => {
  const port = await freePort();
  const child = Bun.spawn(["bun", "processor/src/main.ts"], {
    cwd: tree,
    env: localProcessorEnv(
      { topic, port, redisUrl, mysqlUrl: processorMysql },
      {
        KAFKA_BROKERS: brokers,
        ENABLED_CHANNELS: "webhook",
        WEBHOOK_URL: `http://127.0.0.1:${sink.port}/notify`,
        KAFKA_SESSION_TIMEOUT_MS: "6000",
        // Claims keep their production TTL (120 s): a killed processor's claims are freed by
        // its lapsed liveness key, which is what this run exercises.
        IDEMPOTENCY_OWNER_TTL_MS: "5000",
        IDEMPOTENCY_DONE_TTL_MS: "3600000",
        PROCESSOR_CONCURRENCY: String(CONCURRENCY),
        PARTITIONS_CONCURRENCY: String(PARTITIONS_CONCURRENCY),
        DELIVERY_MAX_ATTEMPTS: "5",
        RETRY_BASE_MS: "50",
        RETRY_MAX_MS: "1000",
        PAUSE_MIN_MS: "500",
        PAUSE_MAX_MS: "2000",
        LOG_LEVEL: "warn",
      },
    ),
    stdout: "ignore",
    stderr: Bun.file(`${logDir}/processor-${id}.${Date.now()}.log`),
  });
  const proc: Proc = { id, child, retiring: false, port };
  procs.set(id, proc);
  void child.exited.then((code) => {
    if (procs.get(id) === proc) procs.delete(id);
    if (stopping || proc.retiring) return;
    restarts++;
    say(`processor ${id} exited (${code}); supervisor restarts it`);
    setTimeout(() => void startProcessor(id), 1000);
  });
  return proc;
};
const killProcessor = (id: number) => {
  sigkills++;
  procs.get(id)?.child.kill("SIGKILL");
};
/** SIGTERM, as Kubernetes stops a pod; resolves when it has exited. */
const retire = async (id: number) => {
  const proc = procs.get(id);
  if (!proc) return;
  proc.retiring = true;
  proc.child.kill("SIGTERM");
  const code = await proc.child.exited;
  say(`processor ${id} stopped by SIGTERM (exit ${code})`);
};
// Interrupted or overrunning: nothing this run started outlives it.
const abandon = (why: string) => {
  console.error(`[chaos] ${why}: stopping the processors and Redis this run started`);
  stopping = true;
  for (const p of procs.values()) p.child.kill("SIGKILL");
  void redis?.kill();
  void redisPair?.primary().kill();
  void redisPair?.replica().kill();
  process.exit(3);
};
process.once("SIGINT", () => abandon("SIGINT"));
process.once("SIGTERM", () => abandon("SIGTERM"));
setTimeout(
  () => abandon(`still running ${timeoutS + 300} s after the start`),
  (timeoutS + 300) * 1000,
).unref();
await startProcessor();

// Events flow at `rate`/s; a failed publish is retried (as Lambda retries an invocation).
const sent: string[] = [];
/** When each event was acknowledged by Kafka (ms since start), by index. */
const sentAt: number[] = [];
let seq = 0;
/**
 * Publishes that failed, and that had no answer within 30 s; publishers replaced (after a hang
 * or five failures of one batch in a row).
 */
let publishFailures = 0;
let publishHangs = 0;
let publisherReplacements = 0;
class Hang extends Error {}
const within = <T>(p: Promise<T>, ms: number): Promise<T> =>
  Promise.race([
    p,
    Bun.sleep(ms).then(() => {
      throw new Hang(`no answer within ${ms} ms`);
    }),
  ]);
const producing = (async () => {
  let publisher = createTreePublisher({ kafka, topic, maxBatchMessages: 1000 });
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
    let failures = 0;
    let published = false;
    while (!published && Date.now() < deadline) {
      try {
        await within(publisher.publish(batch), 30_000);
        published = true;
      } catch (err) {
        // Resent as Lambda would retry: a resend may put a second copy of an event in the
        // topic, which the processor must skip like any redelivery. A publisher that keeps
        // failing (or hangs) is replaced, as a new Lambda container would bring a new one.
        failures++;
        if (err instanceof Hang) publishHangs++;
        else publishFailures++;
        say(`publish of ${batch.length} events failed (${failures}), resent: ${String(err)}`);
        if (err instanceof Hang || failures % 5 === 0) {
          publisherReplacements++;
          say("replacing the publisher");
          const old = publisher;
          void within(old.disconnect(), 5000).catch(() => {});
          publisher = createTreePublisher({ kafka, topic, maxBatchMessages: 1000 });
        }
        await Bun.sleep(500);
        await within(publisher.connect(), 10_000).catch(() => {});
      }
    }
    if (!published) {
      say(
        `--timeout reached while publishing: ${events - seq + batch.length} events never published`,
      );
      break;
    }
    const now = Date.now() - started;
    for (const n of batch) {
      sent.push(n.eventId);
      sentAt.push(now);
    }
    const due = t0 + (seq / rate) * 1000;
    const wait = due - performance.now();
    if (wait > 0) await Bun.sleep(wait);
  }
  await publisher.disconnect().catch(() => {});
})();

const clusterPid = (node: number) =>
  Number(readFileSync(`${cache}/run/kafka-cluster-19092-node${node}.pid`, "utf8").trim());

/** The broker leading the most partitions of the run's topic (the busiest, keys being spread). */
const busiestLeader = async (): Promise<{ node: number; partitions: number[] }> => {
  const parts = (await placements(clusterKafka(brokers.split(",")), [topic])).get(topic) ?? [];
  const byLeader = new Map<number, number[]>();
  for (const p of parts) byLeader.set(p.leader, [...(byLeader.get(p.leader) ?? []), p.partition]);
  const [node, partitions] = [...byLeader].sort(
    (a, b) => b[1].length - a[1].length || a[0] - b[0],
  )[0] ?? [1, []];
  return { node, partitions };
};

const schedules: Record<Scenario, () => Promise<void>> = {
  async none() {},
  async mixed() {
    const kill = async (s: number) => {
      await at(s);
      await fault(`SIGKILL processor #${sigkills + 1}`, async () => killProcessor(1));
    };
    await kill(5);
    await at(10);
    await fault("webhook 500 for 5 s", async () => {
      statusFault = { status: 500, until: Date.now() + 5000 };
      await Bun.sleep(5000);
    });
    await kill(15);
    await at(20);
    await fault(
      `Redis SIGKILL, back in 2 s (${redisMode === "aof" ? "with its data" : "empty"})`,
      async () => {
        await redis?.kill();
        await Bun.sleep(2000);
        redis?.start();
      },
    );
    await kill(25);
    await at(30);
    await fault("webhook 429 (Retry-After: 1) for 5 s", async () => {
      statusFault = { status: 429, until: Date.now() + 5000 };
      await Bun.sleep(5000);
    });
    await kill(35);
    await at(40);
    if (brokerCount === 3) {
      await fault("Kafka restart (all three nodes)", async () => {
        await stack("down", "--brokers", "3");
        await stack("up", "--brokers", "3");
      });
    } else {
      say("Kafka restart skipped: the single broker on 9092 is shared (use --brokers 3)");
    }
    await kill(55);
  },
  async "leader-kill"() {
    await at(8);
    for (let round = 1; round <= 3; round++) {
      const { node, partitions } = await busiestLeader();
      await fault(
        `SIGKILL broker ${node} (leader of partitions ${partitions.join(",")})`,
        async () => {
          process.kill(clusterPid(node), "SIGKILL");
          await Bun.sleep(10_000);
          await stack("up", "--brokers", "3");
        },
      );
      await Bun.sleep(5000);
    }
  },
  async rolling() {
    await at(8);
    await fault("scale 1 → 3", async () => {
      await startProcessor();
      await Bun.sleep(3000);
      await startProcessor();
    });
    await Bun.sleep(5000);
    await fault("rolling restart of 3 by SIGTERM (surge 1)", async () => {
      for (const id of [...procs.keys()]) {
        await startProcessor();
        await Bun.sleep(3000);
        await retire(id);
        await Bun.sleep(3000);
      }
    });
    await Bun.sleep(5000);
    await fault("scale 3 → 1 by SIGTERM", async () => {
      const ids = [...procs.keys()];
      for (const id of ids.slice(0, ids.length - 1)) {
        await retire(id);
        await Bun.sleep(3000);
      }
    });
  },
  async "redis-failover"() {
    await at(15);
    await fault("Redis failover (replica promoted, old primary demoted to replica)", async () => {
      await redisPair?.failover();
    });
  },
  async "db-down"() {
    await at(10);
    await fault("delivery-log database unreachable for 60 s", async () => {
      dbProxy?.cut();
      await Bun.sleep(60_000);
      await dbProxy?.restore();
    });
  },
  async "stalled-body"() {
    await at(10);
    await fault("1 in 200 webhook bodies stall 60 s, for 20 s", async () => {
      stallFault = { until: Date.now() + 20_000, every: 200, stallMs: 60_000 };
      await Bun.sleep(20_000);
    });
  },
};

/** End-to-end backlog (published, not yet delivered) every 100 ms: [ms since start, events]. */
const backlog: [number, number][] = [];
const sampler = setInterval(
  () => backlog.push([Date.now() - started, sent.length - received.size]),
  100,
);
const progress = setInterval(
  () =>
    say(
      `progress: ${sent.length} published, ${received.size} delivered, ${procs.size} processor(s)`,
    ),
  10_000,
);
const schedule = schedules[scenario]().catch((err) => say(`schedule failed: ${String(err)}`));
await Promise.all([producing, schedule]);
clearInterval(progress);
say(`all ${events} events published; waiting for delivery`);

// Dead letters are replayed the way on-call would, until everything is delivered.
const missingIds = () => sent.filter((id) => !received.has(id));
let replayed = 0;
let dlqSeen = 0;
/** Consecutive checks that found the group's lag 0 while events were missing. */
let drainedChecks = 0;
/** The processors' group has committed everything the topic holds (nothing left to deliver). */
const groupDrained = async (): Promise<boolean> => {
  const admin = kafka.admin();
  try {
    await admin.connect();
    const [ends, [committed]] = await Promise.all([
      admin.fetchTopicOffsets(topic),
      admin.fetchOffsets({ groupId: `${topic}-processor`, topics: [topic] }),
    ]);
    const at = new Map(committed?.partitions.map((p) => [p.partition, Number(p.offset)]));
    return ends.every((e) => (at.get(e.partition) ?? -1) >= Number(e.high));
  } catch {
    return false;
  } finally {
    await admin.disconnect().catch(() => {});
  }
};
while (missingIds().length > 0 && Date.now() < deadline) {
  await Bun.sleep(2000);
  const missing = missingIds().length;
  if (missing === 0) break;
  // Missing events the topic does not hold can never arrive: stop waiting after 20 s of that.
  drainedChecks = (await groupDrained()) ? drainedChecks + 1 : 0;
  if (drainedChecks >= 10 && dlqSeen === 0) {
    say(`${missing} missing, but the group has committed the whole topic for 20 s: not waiting`);
    break;
  }
  say(`${received.size}/${events} delivered, ${missing} missing, ${restarts} supervisor restarts`);
  const publisher = createPublisher({ kafka, topic });
  try {
    await publisher.connect();
    const report = await replayDlq({ kafka, topic, publisher, logger, timeoutMs: 10_000 });
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
clearInterval(sampler);
const finished = t();
const timedOut = missingIds().length > 0;
if (timedOut) {
  const missing = missingIds().map((id) => sent.indexOf(id));
  say(
    `undelivered event indices: ${missing.slice(0, 20).join(",")}${missing.length > 20 ? ",…" : ""}`,
  );
  for (const p of procs.values()) {
    const status = await fetch(`http://127.0.0.1:${p.port}/status.json`)
      .then((r) => r.text())
      .catch((err) => String(err));
    await Bun.write(`${logDir}/status-${p.id}.json`, status);
  }
  say(`processor logs and /status.json in ${logDir}`);
}

const peakBacklog = Math.max(0, ...backlog.map(([, n]) => n));
// The longest time without a first delivery while events were outstanding.
const firsts = [...firstAt.values()].sort((a, b) => a - b);
let longestGapS = 0;
for (let i = 1; i < firsts.length; i++) {
  longestGapS = Math.max(longestGapS, ((firsts[i] as number) - (firsts[i - 1] as number)) / 1000);
}

stopping = true;
for (const proc of procs.values()) proc.child.kill("SIGTERM");
await Promise.all([...procs.values()].map((p) => p.child.exited));
let logDelivered: number | undefined;
try {
  const db = await mysql.createConnection(`${mysqlServer}/${database}`);
  const [rows] = await db.query(
    "SELECT COUNT(DISTINCT event_id) AS delivered FROM fanda_deliveries WHERE status = 'delivered'",
  );
  logDelivered = Number((rows as { delivered: number }[])[0]?.delivered);
  // Evidence of a loss is kept (database, topic, missing ids) for whoever looks into it.
  if (missingIds().length === 0) await db.query(`DROP DATABASE \`${database}\``);
  await db.end();
} catch (err) {
  say(`reading the delivery log failed: ${String(err)}`);
}
// A missing event is either not in the topic at all (its publish was acknowledged, yet the
// record is not there: lost on the way in) or in it and never delivered (lost by the processor).
const admin = kafka.admin();
await admin.connect().catch(() => {});
let notInTopic = 0;
const neverInTopic = new Set<string>();
if (missingIds().length > 0) {
  const wanted = new Set(missingIds());
  const inTopic = new Set<string>();
  const reader = kafka.consumer({ groupId: `${topic}-audit` });
  const ends = await admin.fetchTopicOffsets(topic).catch(() => []);
  const total = ends.reduce((n, p) => n + Number(p.high) - Number(p.low), 0);
  let read = 0;
  try {
    await reader.connect();
    await reader.subscribe({ topic, fromBeginning: true });
    await reader.run({
      eachMessage: async ({ message }) => {
        read++;
        const id = (JSON.parse(String(message.value)) as { eventId?: string }).eventId;
        if (id && wanted.has(id)) inTopic.add(id);
      },
    });
    const until = Date.now() + 60_000;
    while (read < total && Date.now() < until) await Bun.sleep(500);
  } finally {
    await reader.disconnect().catch(() => {});
  }
  notInTopic = wanted.size - inTopic.size;
  for (const id of wanted) if (!inTopic.has(id)) neverInTopic.add(id);
  say(
    `of ${wanted.size} undelivered: ${notInTopic} not in the topic (publish acknowledged, record absent), ${inTopic.size} in it (read ${read}/${total} records)`,
  );
}
// Recovery per fault: from the fault's end until the last event it delayed (more than
// SLOW_MS from acknowledged publish to first delivery) has arrived, looking at deliveries up to
// the next fault; null if events of that window that are in the topic were never delivered
// (events lost on the way in are counted as such, not as the processor's). (A backlog
// threshold would count the publisher's own catch-up bursts on this shared machine.)
const SLOW_MS = 5000;
const latencyOf = new Map<string, number>();
sent.forEach((id, i) => {
  const first = firstAt.get(id);
  if (first !== undefined) latencyOf.set(id, first - (sentAt[i] as number));
});
const recovery = faults.map((f, i) => {
  const windowEnd = (faults[i + 1]?.start ?? Number.POSITIVE_INFINITY) * 1000;
  let lastSlow = 0;
  let stuck = false;
  sent.forEach((id, j) => {
    if ((sentAt[j] as number) >= windowEnd) return;
    const first = firstAt.get(id);
    if (first === undefined) stuck ||= !neverInTopic.has(id);
    else if (first >= f.start * 1000 && first < windowEnd && (latencyOf.get(id) ?? 0) > SLOW_MS) {
      lastSlow = Math.max(lastSlow, first);
    }
  });
  return {
    ...f,
    recoveryS: stuck ? null : Math.max(0, lastSlow / 1000 - f.end),
    overlapsNext: Number.isFinite(windowEnd) && lastSlow > windowEnd - 1000,
  };
});
const latencies = [...latencyOf.values()].sort((a, b) => a - b);
const p99LatencyS = (latencies[Math.floor(latencies.length * 0.99)] ?? 0) / 1000;
const maxLatencyS = (latencies.at(-1) ?? 0) / 1000;
const dlqOffsets = await admin.fetchTopicOffsets(dlqTopicOf(topic)).catch(() => []);
const deadLettered = dlqOffsets.reduce((n, p) => n + Number(p.high) - Number(p.low), 0);
if (missingIds().length === 0) {
  await admin.deleteTopics({ topics: [topic, dlqTopicOf(topic)] }).catch(() => {});
} else {
  await Bun.write(`${logDir}/missing.txt`, `${missingIds().join("\n")}\n`);
  say(
    `kept for inspection: topic ${topic} (${brokers}), database ${database}, ${logDir}/missing.txt`,
  );
}
await admin.disconnect().catch(() => {});
await redis?.stop();
await redisPair?.stop();
await dbProxy?.stop();
await sink.stop(true);

// What the processors' own logs say about the group: evictions and consumer crashes.
const processorLog = [...new Bun.Glob("processor-*.log").scanSync(logDir)]
  .map((f) => readFileSync(`${logDir}/${f}`, "utf8"))
  .join("\n");
const count = (text: string) => processorLog.split(text).length - 1;
const groupRejoins = count("re-joining the group");
const consumerCrashes = count("consumer crashed");
/** Not delivered when the run ended (still in the topic, or never in it: see lostNotInTopic). */
const lost = missingIds().length;
const duplicates = deliveries - received.size;
/** What the fault may repeat at most, by design. */
const bound: Record<Scenario, { value: number; why: string }> = {
  none: { value: 0, why: "no fault" },
  mixed: {
    value: sigkills * IN_FLIGHT,
    why: `${sigkills} SIGKILLs × ${IN_FLIGHT} in flight (${CONCURRENCY} concurrency × ${PARTITIONS_CONCURRENCY} partitions × ${CHANNELS} channel)${redisMode === "empty" ? "; Redis emptied: unbounded" : ""}`,
  },
  "leader-kill": { value: 0, why: "no processor dies; redeliveries are found done in Redis" },
  rolling: { value: 0, why: "graceful: SIGTERM finishes and commits in-flight work" },
  "redis-failover": {
    value: IN_FLIGHT,
    why: `done marks acknowledged by the old primary and not yet replicated: at most what is in flight (${IN_FLIGHT})`,
  },
  "db-down": { value: 0, why: "graceful: Redis keeps the done marks while the log is down" },
  "stalled-body": {
    value: stalled,
    why: "one resend per stalled response at most (a sender that retries a 2xx it gave up reading)",
  },
};
const summary = {
  scenario,
  brokers: brokerCount,
  commit,
  date: new Date().toISOString(),
  events,
  rate,
  published: sent.length,
  delivered: received.size,
  lost,
  lostNotInTopic: notInTopic,
  duplicates,
  duplicateBound: bound[scenario].value,
  deadLettered,
  replayed,
  deliveryLogDistinct: logDelivered,
  supervisorRestarts: restarts,
  groupRejoins,
  consumerCrashes,
  sigkills,
  stalledResponses: stalled,
  publishFailures,
  publishHangs,
  publisherReplacements,
  faults: recovery.map((f) => ({
    name: f.name,
    startS: Number(f.start.toFixed(1)),
    endS: Number(f.end.toFixed(1)),
    recoveryS: f.recoveryS === null ? null : Number(f.recoveryS.toFixed(1)),
    ...(f.overlapsNext ? { recoveryAtLeast: true } : {}),
  })),
  peakBacklog,
  p99LatencyS: Number(p99LatencyS.toFixed(2)),
  maxLatencyS: Number(maxLatencyS.toFixed(1)),
  maxRecoveryS: recovery.some((f) => f.recoveryS === null)
    ? null
    : Number(Math.max(0, ...recovery.map((f) => f.recoveryS as number)).toFixed(1)),
  longestDeliveryGapS: Number(longestGapS.toFixed(1)),
  deliveredAtS: Number(finished.toFixed(1)),
  runS: Number(t().toFixed(1)),
  timedOut,
};
const command = `bun scripts/chaos.ts --scenario ${scenario} --brokers ${brokerCount} --events ${events} --rate ${rate}${scenario === "mixed" ? ` --redis ${redisMode}` : ""}`;
console.log(`
### ${scenario} (${summary.date.slice(0, 10)}, ${commit})

\`${command}\`

| measure | value |
|---|---|
| events published / delivered (distinct) | ${sent.length} / ${received.size} |
| not delivered at the end (lost) | **${lost}**${timedOut ? ` (not delivered within --timeout ${timeoutS} s; ${notInTopic} of them never reached the topic although their publish was acknowledged)` : ""} |
| duplicate deliveries | ${duplicates} (bound ${bound[scenario].value}: ${bound[scenario].why}) |
| duplicates by arrival window (s: count) | ${
  [...duplicatesAt]
    .sort((a, b) => a[0] - b[0])
    .map(([w, c]) => `${w}: ${c}`)
    .join(", ") || "none"
} |
| dead-lettered / replayed | ${deadLettered} / ${replayed} |
| faults (start–end s → recovery s: until the last event delayed > 5 s arrived) | ${recovery.map((f) => `${f.name} ${f.start.toFixed(0)}–${f.end.toFixed(0)} → ${f.recoveryS === null ? "never" : `${f.overlapsNext ? "≥ " : ""}${f.recoveryS.toFixed(1)}`}`).join("; ")} |
| longest gap without a new delivery / peak backlog | ${longestGapS.toFixed(1)} s / ${peakBacklog} events |
| publish → first delivery: p99 / max | ${p99LatencyS.toFixed(2)} s / ${maxLatencyS.toFixed(1)} s |
| supervisor restarts / evicted members re-joining / consumer crashes (from the processors' logs) | ${restarts} / ${groupRejoins} / ${consumerCrashes} |
| publishes failed / hung / publishers replaced | ${publishFailures} / ${publishHangs} / ${publisherReplacements} |
| delivery log: distinct events delivered | ${logDelivered} |
| all delivered at / run time | ${finished.toFixed(0)} s / ${t().toFixed(0)} s |
`);
console.log(JSON.stringify({ chaos: summary, command }));
mkdirSync(`${cache}/chaos`, { recursive: true });
appendFileSync(`${cache}/chaos/results.jsonl`, `${JSON.stringify({ chaos: summary, command })}\n`);
process.exit(lost === 0 ? 0 : 1);
