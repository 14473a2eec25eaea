/**
 * Benchmark: the processor end to end — Kafka → Redis idempotency → webhook to a local sink
 * → MySQL delivery log — against a raw kafkajs consumer that only reads the same topic, in
 * the same run. Bounded in count and time, loopback only. Needs scripts/stack up.
 *
 *   bun scripts/bench/pipeline.ts [--events 50000] [--rate 500] [--seconds 20] [--instances 1]
 *
 * Phases:
 *   raw:        a kafkajs eachBatch consumer reads the pre-produced backlog of `events`;
 *   kcat:       `kcat` (Debian package) reads the same backlog, when it is installed;
 *   throughput: the processor (its own process; `--instances` of them in one group) drains
 *               the same backlog under a new group, start-up and group join included;
 *   latency:    events produced at `rate`/s for `seconds`, each stamped with its upload time;
 *               latency = accepted by the sink − upload time (produce → delivered).
 * The processor's RSS and CPU are sampled from /proc while it runs.
 * `--plot <file.svg>` writes the latency percentile curve of the steady-rate phase.
 * FANDA_BENCH_PROFILE=<dir> also writes the processor's CPU profile (markdown) into <dir>.
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { logLevel } from "kafkajs";
import mysql from "mysql2/promise";
import type { Notification } from "../../producer/src/contract.ts";
import {
  createKafka,
  createPublisher,
  dlqTopicOf,
  ensureTopics,
} from "../../producer/src/kafka.ts";
import { createLogger } from "../../producer/src/log.ts";
import { toNotification } from "../../producer/src/s3-event.ts";
import { freePort } from "../local.ts";
import { waitFor } from "../wait.ts";
import { latencySvg } from "./plot.ts";
import { ms, summarize } from "./stats.ts";

const { values } = parseArgs({
  options: {
    events: { type: "string", default: "50000" },
    rate: { type: "string", default: "500" },
    seconds: { type: "string", default: "20" },
    instances: { type: "string", default: "1" },
    plot: { type: "string" },
  },
});
const instances = Number(values.instances);
const events = Number(values.events);
const rate = Number(values.rate);
const seconds = Number(values.seconds);
for (const [name, v, max] of [
  ["events", events, 1_000_000],
  ["rate", rate, 5000],
  ["seconds", seconds, 300],
  ["instances", instances, 6],
] as const) {
  if (!Number.isInteger(v) || v < 1 || v > max) {
    console.error(`--${name}: expected an integer from 1 to ${max}, got ${v}`);
    process.exit(2);
  }
}

const brokers = process.env.KAFKA_BROKERS ?? "127.0.0.1:9092";
const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const mysqlServer = process.env.MYSQL_SERVER_URL ?? "mysql://root@127.0.0.1:3306";
const run = crypto.randomUUID().slice(0, 8);
const topic = `fanda-bench-pipeline-${run}`;
const database = `fanda_bench_${run}`;
const logger = createLogger({ level: "error", ns: "bench" });
const kafka = createKafka(
  { brokers: brokers.split(","), auth: "plaintext", ssl: false, topic, clientId: "fanda-bench" },
  { logger, logLevel: logLevel.NOTHING },
);

// The sink: counts deliveries and the latency of each from its upload time.
let delivered = 0;
const latencies: number[] = [];
let measuring = false;
const sink = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  async fetch(req) {
    const n = (await req.json()) as Notification;
    delivered++;
    if (measuring) latencies.push(Date.now() - Date.parse(n.uploadTime));
    return new Response(null, { status: 204 });
  },
});

let seq = 0;
const notification = (): Notification =>
  toNotification(
    {
      bucket: "fanda-bench",
      key: `reports/positive/bench-${run}-${seq}.pdf`,
      eventName: "ObjectCreated:Put",
      eventTime: new Date().toISOString(),
      sequencer: (seq++).toString(16).padStart(16, "0"),
      size: 1024,
      eTag: "d41d8cd98f00b204e9800998ecf8427e",
    },
    "positive",
  );

await ensureTopics(kafka, topic, { partitions: 6 });
const conn = await mysql.createConnection(mysqlServer);
await conn.query(`CREATE DATABASE \`${database}\``);
await conn.end();
const publisher = createPublisher({ kafka, topic });
await publisher.connect();
for (let i = 0; i < events; i += 1000) {
  await publisher.publish(Array.from({ length: Math.min(1000, events - i) }, notification));
}

// Raw baseline: read the backlog, do nothing with it.
const rawConsumer = kafka.consumer({ groupId: `${topic}-raw`, maxWaitTimeInMs: 200 });
let rawCount = 0;
await rawConsumer.connect();
await rawConsumer.subscribe({ topics: [topic], fromBeginning: true });
const rawStart = performance.now();
await rawConsumer.run({
  partitionsConsumedConcurrently: 3,
  eachBatch: async ({ batch }) => {
    rawCount += batch.messages.length;
  },
});
await waitFor("the raw consumer to read the backlog", () => rawCount >= events, {
  timeoutMs: 300_000,
  intervalMs: 5,
});
const rawSeconds = (performance.now() - rawStart) / 1000;
await rawConsumer.disconnect();

// kcat's read of the same backlog, a second baseline outside kafkajs.
let kcatRate: number | undefined;
const kcat = Bun.which("kcat");
if (kcat) {
  const k0 = performance.now();
  const proc = Bun.spawn(
    [
      kcat,
      "-C",
      "-b",
      brokers,
      "-t",
      topic,
      "-o",
      "beginning",
      "-c",
      String(events),
      "-e",
      "-q",
      "-f",
      "\\n",
    ],
    {
      stdout: "pipe",
      stderr: "ignore",
    },
  );
  const lines = (await new Response(proc.stdout).text()).split("\n").length - 1;
  await proc.exited;
  if (lines >= events) kcatRate = events / ((performance.now() - k0) / 1000);
}

// The processor(s), each in its own process, draining the same backlog.
const ports = await Promise.all(Array.from({ length: instances }, () => freePort()));
const port = ports[0] as number;
// FANDA_BENCH_PROFILE=<dir>: write the processor's CPU profile (markdown) there on exit.
const profileDir = process.env.FANDA_BENCH_PROFILE;
const profileArgs = profileDir
  ? ["--cpu-prof", "--cpu-prof-md", `--cpu-prof-dir=${profileDir}`]
  : [];
// FANDA_BENCH_BUN_ARGS: extra flags for the processor's bun (e.g. --smol).
const bunArgs = (process.env.FANDA_BENCH_BUN_ARGS ?? "").split(" ").filter((a) => a.length > 0);
const processors = ports.map((p) =>
  Bun.spawn(["bun", ...bunArgs, ...profileArgs, "processor/src/main.ts"], {
    env: {
      ...process.env,
      KAFKA_BROKERS: brokers,
      KAFKA_TOPIC: topic,
      KAFKA_GROUP_ID: `${topic}-processor`,
      HOST: "127.0.0.1",
      PORT: String(p),
      ENABLED_CHANNELS: "webhook",
      WEBHOOK_URL: `http://127.0.0.1:${sink.port}/notify`,
      REDIS_URL: redisUrl,
      MYSQL_URL: `${mysqlServer}/${database}`,
      IDEMPOTENCY_DONE_TTL_MS: "3600000",
      LOG_LEVEL: "warn",
    },
    stdout: "inherit",
    stderr: "inherit",
  }),
);
const processor = processors[0] as (typeof processors)[number];
const clockTicks = 100;
const sample = () => {
  const status = readFileSync(`/proc/${processor.pid}/status`, "utf8");
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  const stat = readFileSync(`/proc/${processor.pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
  const cpuSeconds = (Number(stat[11]) + Number(stat[12])) / clockTicks;
  return { rssMb: rssKb / 1024, cpuSeconds };
};
let peakRss = 0;
const sampler = setInterval(() => {
  try {
    peakRss = Math.max(peakRss, sample().rssMb);
  } catch {}
}, 200);
const t0 = performance.now();
await waitFor("the processor to deliver the backlog", () => delivered >= events, {
  timeoutMs: 600_000,
  intervalMs: 5,
});
const pipelineSeconds = (performance.now() - t0) / 1000;
const afterBacklog = sample();

// Latency at a steady rate.
measuring = true;
const total = rate * seconds;
const start = performance.now();
for (let i = 0; i < total; i++) {
  const due = start + (i * 1000) / rate;
  const wait = due - performance.now();
  if (wait > 1) await Bun.sleep(wait);
  void publisher.publish([notification()]);
}
await waitFor("the paced events to be delivered", () => latencies.length >= total, {
  timeoutMs: 60_000,
});
const lat = summarize(latencies);
if (values.plot) {
  await Bun.write(
    values.plot,
    latencySvg(
      latencies,
      `Upload → delivered at ${rate}/s for ${seconds}s (Redis, MySQL, webhook)`,
    ),
  );
}
const idle = sample();
clearInterval(sampler);
// Where a batch's time goes, from the processor's own histogram.
const metricsText = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
const phases = ["decode", "claim", "deliver", "log", "commit"].map((p) => {
  const sum = Number(
    new RegExp(`fanda_batch_phase_seconds_sum\\{phase="${p}"\\} (\\S+)`).exec(metricsText)?.[1] ??
      0,
  );
  const count = Number(
    new RegExp(`fanda_batch_phase_seconds_count\\{phase="${p}"\\} (\\S+)`).exec(metricsText)?.[1] ??
      0,
  );
  return `${p} ${count > 0 ? ((sum / count) * 1000).toFixed(2) : "n/a"}`;
});
const batches = Number(/fanda_batch_messages_count (\S+)/.exec(metricsText)?.[1] ?? 0);

for (const p of processors) p.kill("SIGTERM");
const exit = Math.max(...(await Promise.all(processors.map((p) => p.exited))));
await publisher.disconnect();
await sink.stop(true);
const admin = kafka.admin();
await admin.connect();
await admin.deleteTopics({ topics: [topic, dlqTopicOf(topic)] }).catch(() => {});
await admin.disconnect();
const conn2 = await mysql.createConnection(mysqlServer);
const [rows] = await conn2.query(`SELECT COUNT(*) AS n FROM \`${database}\`.fanda_deliveries`);
await conn2.query(`DROP DATABASE \`${database}\``);
await conn2.end();

const rawRate = events / rawSeconds;
const pipeRate = events / pipelineSeconds;
console.log(`
### Pipeline end to end vs raw consume (${new Date().toISOString().slice(0, 10)})

\`bun scripts/bench/pipeline.ts --events ${events} --rate ${rate} --seconds ${seconds}\`

| measure | value |
|---|---|
| raw kafkajs consumer, ${events} events | ${rawRate.toFixed(0)} events/s |
| kcat read of the same backlog | ${kcatRate ? `${kcatRate.toFixed(0)} events/s` : "kcat not installed"} |
| processor instances in the group | ${instances} (RSS and CPU below are the first one's) |
| processor end to end (Kafka → Redis claim → webhook → Redis done → MySQL log), ${events} events | ${pipeRate.toFixed(0)} events/s |
| ratio pipeline / raw | ${(pipeRate / rawRate).toFixed(2)} |
| processor CPU while draining | ${((afterBacklog.cpuSeconds / pipelineSeconds) * 100).toFixed(0)}% of one core |
| latency at ${rate}/s for ${seconds}s, upload → delivered: p50 / p95 / p99 / max | ${ms(lat.p50)} / ${ms(lat.p95)} / ${ms(lat.p99)} / ${ms(lat.max)} ms |
| processor RSS: peak / at end | ${peakRss.toFixed(0)} / ${idle.rssMb.toFixed(0)} MB |
| batches / mean messages per batch | ${batches} / ${((events + total) / Math.max(1, batches)).toFixed(1)} |
| mean ms per batch phase | ${phases.join(", ")} |
| delivery log rows | ${(rows as { n: number }[])[0]?.n} (expected ${events + total}) |
| processor exit on SIGTERM | ${exit} |
`);
process.exit(0);
