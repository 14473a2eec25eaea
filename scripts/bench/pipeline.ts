/**
 * Benchmark: the processor end to end — Kafka → Redis idempotency → channels (webhook to a
 * local sink, Slack to the Slack test server with its rate limit lifted) → MySQL delivery
 * log — against a raw kafkajs consumer and kcat reading the same topic, in the same run.
 * Bounded in count and time, loopback only. Needs scripts/stack up.
 *
 *   bun scripts/bench/pipeline.ts [--events 200000] [--rate 500] [--seconds 20]
 *       [--channels webhook,slack] [--runtimes bun] [--instances 1] [--plot file.svg]
 *       [--ram-mb 384]
 *
 * Phases:
 *   backlog:    `events` S3 events through the producer's publisher into a new topic;
 *   raw:        a kafkajs eachBatch consumer reads the backlog and does nothing with it;
 *   kcat:       `kcat` (Debian package) reads the same backlog, when it is installed;
 *   delivering: kafkajs reads it and POSTs each event once per channel to the sink (96 in
 *               flight): the cheapest delivery, no idempotency, log, retries or templates;
 *   then for each runtime of `--runtimes` (bun, node: the same processor code, bundled with
 *   `bun build --target=node` for Node), with a topic (the same backlog), consumer group and
 *   MySQL database of its own:
 *   throughput: the processor (its own process; `--instances` of them in one group) drains
 *               the backlog, start-up and group join included; an event counts when every
 *               channel has it;
 *   latency:    events produced at `rate`/s for `seconds`, upload time → the last of its
 *               channels accepted it.
 * The first processor's RSS and CPU are sampled from /proc while it runs. Cost per delivery:
 * over the steady window (first event complete → last complete, start-up and group join
 * left out) the processors' CPU-µs per event from /proc/<pid>/stat (all instances), against the delivering
 * baseline's own `process.cpuUsage()` over its window, and both steady events/s.
 * `--ram-mb` paces Bun's GC to that RAM (BUN_JSC_forceRAMSize, as the Deployment sets it
 * from its memory limit: 384 MiB in kustomize/base); 0 leaves Bun's default (the host's RAM).
 * `--plot <file.svg>` writes the latency percentile curve of the first runtime's paced phase.
 * FANDA_BENCH_PROFILE=<dir> also writes the processor's CPU profile into <dir>;
 * FANDA_BENCH_RUNTIME_ARGS adds flags to the processor's runtime (e.g. `--smol`).
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import mysql from "mysql2/promise";
import type { Notification } from "../../core/contract.ts";
import { createPublisher, dlqTopicOf, ensureTopics } from "../../core/kafka.ts";
import { toNotification } from "../../producer/src/s3-event.ts";
import {
  LOCAL_BROKERS as brokers,
  buildProcessorForNode,
  freePort,
  localKafka,
  localProcessorEnv,
  PROCESSOR_TEMPLATES_DIR,
  rssMbOf,
  runCommand,
} from "../../test/support/local.ts";
import { waitFor } from "../../test/support/wait.ts";
import { startSlackServer } from "../slack-server.ts";
import { checkOptions, orExit, parseOptions } from "./args.ts";
import { latencySvg } from "./plot.ts";
import { ms, summarize } from "./stats.ts";

const values = orExit(() =>
  parseOptions({
    events: { default: "200000" },
    rate: { default: "500" },
    seconds: { default: "20" },
    instances: { default: "1" },
    channels: { default: "webhook,slack" },
    runtimes: { default: "bun" },
    "ram-mb": { default: "384" },
    plot: {},
  }),
);
const { ints, lists } = orExit(() =>
  checkOptions(
    {
      events: { value: values.events, min: 1, max: 1_000_000 },
      rate: { value: values.rate, min: 1, max: 5000 },
      seconds: { value: values.seconds, min: 1, max: 300 },
      instances: { value: values.instances, min: 1, max: 6 },
      "ram-mb": { value: values["ram-mb"], min: 0, max: 65_536 },
    },
    {
      channels: { value: values.channels, allowed: ["webhook", "slack"] },
      runtimes: { value: values.runtimes, allowed: ["bun", "node"] },
    },
  ),
);
const { events, rate, seconds, instances } = ints;
const ramMb = ints["ram-mb"];
const channels = lists.channels;
const runtimes = lists.runtimes as ("bun" | "node")[];

const root = `${import.meta.dir}/../..`;
const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const mysqlServer = process.env.MYSQL_SERVER_URL ?? "mysql://root@127.0.0.1:3306";
const run = crypto.randomUUID().slice(0, 8);
const topicBase = `fanda-bench-pipeline-${run}`;
const database = `fanda_bench_${run}`;
const kafka = localKafka("fanda-bench", { topic: topicBase });

// Arrival of each event (by sequence number, unique across the run's topics) at each channel;
// complete when all have it.
const capacity = (events + rate * seconds) * runtimes.length;
const webhookAt = new Float64Array(capacity);
const slackAt = new Float64Array(capacity);
const uploadAt = new Float64Array(capacity);
let complete = 0;
let measuring = false;
/** Called when the first event is complete and when the `events`-th is (the steady window). */
let onComplete: ((n: number) => void) | undefined;
let latencies: number[] = [];
const arrived = (seq: number, at: Float64Array) => {
  if (!(seq >= 0 && seq < capacity) || at[seq] !== 0) return;
  at[seq] = Date.now();
  const done = channels.every((c) => (c === "webhook" ? webhookAt : slackAt)[seq] !== 0);
  if (!done) return;
  complete++;
  if (complete === 1 || complete === events) onComplete?.(complete);
  if (measuring) latencies.push(Date.now() - (uploadAt[seq] ?? 0));
};
const seqOf = (fileName: string) => Number(/bench-\w+-(\d+)\.pdf/.exec(fileName)?.[1] ?? -1);

const sink = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  async fetch(req) {
    const n = (await req.json()) as Notification;
    if (req.url.endsWith("/baseline")) baselineReceived++;
    else arrived(seqOf(n.objectKey), webhookAt);
    return new Response(null, { status: 204 });
  },
});
let baselineReceived = 0;
const slack = startSlackServer({
  ratePerSecond: 1_000_000,
  burst: 1_000_000,
  keepMessages: false,
  onMessage: (m) => arrived(seqOf(m.text ?? ""), slackAt),
});

let seq = 0;
const notification = (): Notification => {
  uploadAt[seq] = Date.now();
  return toNotification(
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
};

/** A topic of its own per runtime, each with the same backlog of `events`. */
const backlog = async (topic: string) => {
  await ensureTopics(kafka, topic, { partitions: 6 });
  const publisher = createPublisher({ kafka, topic });
  await publisher.connect();
  const p0 = performance.now();
  for (let i = 0; i < events; i += 1000) {
    await publisher.publish(Array.from({ length: Math.min(1000, events - i) }, notification));
  }
  return { publisher, rate: events / ((performance.now() - p0) / 1000) };
};
const topicOf = (runtime: string) => `${topicBase}-${runtime}`;
const firstTopic = topicOf(runtimes[0] ?? "bun");
let produced = await backlog(firstTopic);
const produceRate = produced.rate;

// Raw baseline: read the backlog, do nothing with it.
const rawConsumer = kafka.consumer({ groupId: `${firstTopic}-raw`, maxWaitTimeInMs: 200 });
let rawCount = 0;
await rawConsumer.connect();
await rawConsumer.subscribe({ topics: [firstTopic], fromBeginning: true });
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
const rawRate = events / ((performance.now() - rawStart) / 1000);
await rawConsumer.disconnect();

// kcat's read of the same backlog, a second baseline outside kafkajs.
let kcatRate: number | undefined;
const kcat = Bun.which("kcat");
if (kcat) {
  const k0 = performance.now();
  const args = ["-C", "-b", brokers, "-t", firstTopic, "-o", "beginning", "-c", String(events)];
  const proc = Bun.spawn([kcat, ...args, "-e", "-q", "-f", "\\n"], {
    stdout: "pipe",
    stderr: "ignore",
  });
  const lines = (await new Response(proc.stdout).text()).split("\n").length - 1;
  await proc.exited;
  if (lines >= events) kcatRate = events / ((performance.now() - k0) / 1000);
}

// A delivering baseline, in its own process like the processor: the same backlog read by
// kafkajs, each event POSTed once per channel to the sink — no idempotency, no log, no
// retries, no templates. What the cheapest delivery from this runtime costs.
const bare = await runCommand(
  [
    "bun",
    "scripts/bench/bare-delivery.ts",
    `--topic=${firstTopic}`,
    `--url=http://127.0.0.1:${sink.port}/baseline`,
    `--events=${events}`,
    `--channels=${channels.length}`,
  ],
  { cwd: root, env: { ...process.env, KAFKA_BROKERS: brokers } },
);
if (bare.code !== 0) throw new Error(`the delivering baseline failed: ${bare.stderr}`);
const bareResult = JSON.parse(bare.stdout.trim().split("\n").at(-1) ?? "{}") as {
  eventsPerSecond: number;
  steadyEventsPerSecond: number;
  cpuUsPerEvent: number;
  peakRssMb: number;
};
const bareRate = bareResult.eventsPerSecond;

// The same processor code for Node: one bundle, templates read from the source tree.
const work = mkdtempSync(`${tmpdir()}/fanda-bench-`);
const nodeBundle = `${work}/processor.mjs`;
if (runtimes.includes("node")) {
  await buildProcessorForNode(nodeBundle);
}

/** What one runtime measured. */
interface Measured {
  runtime: string;
  version: string;
  drainRate: number;
  /** Events/s and process CPU-µs per event between the first and the last complete event. */
  steadyRate: number;
  cpuUsPerEvent: number;
  cpuPercent: number;
  lat: ReturnType<typeof summarize>;
  peakRssMb: number;
  endRssMb: number;
  phases: string[];
  batches: number;
  logRows: number;
  expectedRows: number;
  exit: number;
}

const processorEnv = (runtime: string, port: number) =>
  localProcessorEnv(
    {
      topic: topicOf(runtime),
      port,
      redisUrl,
      mysqlUrl: `${mysqlServer}/${database}_${runtime}`,
    },
    {
      ENABLED_CHANNELS: channels.join(","),
      WEBHOOK_URL: `http://127.0.0.1:${sink.port}/notify`,
      SLACK_BOT_TOKEN: "xoxb-local",
      SLACK_API_URL: slack.apiUrl,
      SLACK_DEFAULT_CHANNEL: "#bench",
      ...(runtime === "bun" && ramMb > 0 ? { BUN_JSC_forceRAMSize: String(ramMb * 2 ** 20) } : {}),
      SLACK_RATE_PER_SECOND: "10000",
      SLACK_BURST: "10000",
      // One Slack message per notification: the benchmark measures per-notification work (with
      // Slack's real limit, digests would carry bursts in a few messages).
      SLACK_DIGEST: "false",
      TEMPLATES_DIR: PROCESSOR_TEMPLATES_DIR,
      IDEMPOTENCY_DONE_TTL_MS: "900000",
      LOG_LEVEL: "warn",
    },
  );

const profileDir = process.env.FANDA_BENCH_PROFILE;
// FANDA_BENCH_RUNTIME_ARGS: extra flags for the processor's runtime (e.g. --smol).
const runtimeArgs = (process.env.FANDA_BENCH_RUNTIME_ARGS ?? "").split(" ").filter(Boolean);
const measure = async (runtime: "bun" | "node", index: number): Promise<Measured> => {
  const conn = await mysql.createConnection(mysqlServer);
  await conn.query(`CREATE DATABASE \`${database}_${runtime}\``);
  await conn.end();
  if (index > 0) produced = await backlog(topicOf(runtime));
  complete = 0;
  const version = (await runCommand([runtime, "--version"])).stdout.trim();
  const command = (profile: string[]) =>
    runtime === "bun"
      ? ["bun", ...runtimeArgs, ...profile, "processor/src/main.ts"]
      : ["node", ...runtimeArgs, ...profile, nodeBundle];
  const profileArgs = profileDir
    ? runtime === "bun"
      ? ["--cpu-prof", "--cpu-prof-md", `--cpu-prof-dir=${profileDir}`]
      : ["--cpu-prof", `--cpu-prof-dir=${profileDir}`]
    : [];
  const ports = await Promise.all(Array.from({ length: instances }, () => freePort()));
  const processors = ports.map((p) =>
    Bun.spawn(command(profileArgs), {
      cwd: root,
      env: processorEnv(runtime, p),
      stdout: "inherit",
      stderr: "inherit",
    }),
  );
  const first = processors[0] as (typeof processors)[number];
  /** utime + stime of a process, in seconds (clock ticks of 1/100 s). */
  const cpuOf = (pid: number) => {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
    return (Number(stat[11]) + Number(stat[12])) / 100;
  };
  const sample = () => {
    return { rssMb: rssMbOf(first.pid), cpuSeconds: cpuOf(first.pid) };
  };
  // The cost per event counts every instance's CPU: the events are theirs together.
  const cpuOfAll = () => processors.reduce((sum, p) => sum + cpuOf(p.pid), 0);
  const steady: { at: number; cpuSeconds: number; complete: number }[] = [];
  onComplete = (n) => {
    try {
      steady.push({ at: performance.now(), cpuSeconds: cpuOfAll(), complete: n });
    } catch {}
  };
  let peakRss = 0;
  const sampler = setInterval(() => {
    try {
      peakRss = Math.max(peakRss, sample().rssMb);
    } catch {}
  }, 200);
  const t0 = performance.now();
  await waitFor(`the ${runtime} processor to deliver the backlog`, () => complete >= events, {
    timeoutMs: 900_000,
    intervalMs: 5,
  });
  const drainSeconds = (performance.now() - t0) / 1000;
  const afterBacklog = sample();
  onComplete = undefined;
  const [w0, w1] = steady;
  const steadyEvents = w0 && w1 ? w1.complete - w0.complete : 0;

  latencies = [];
  measuring = true;
  const total = rate * seconds;
  const start = performance.now();
  for (let i = 0; i < total; i++) {
    const due = start + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await Bun.sleep(wait);
    void produced.publisher.publish([notification()]);
  }
  await waitFor("the paced events to be delivered", () => latencies.length >= total, {
    timeoutMs: 60_000,
  });
  measuring = false;
  const end = sample();
  clearInterval(sampler);
  const metricsText = await (await fetch(`http://127.0.0.1:${ports[0]}/metrics`)).text();
  const metric = (re: string) => Number(new RegExp(re).exec(metricsText)?.[1] ?? 0);
  const phases = ["decode", "claim", "deliver", "log", "commit"].map((p) => {
    const sum = metric(`fanda_batch_phase_seconds_sum\\{phase="${p}"\\} (\\S+)`);
    const count = metric(`fanda_batch_phase_seconds_count\\{phase="${p}"\\} (\\S+)`);
    return `${p} ${count > 0 ? ((sum / count) * 1000).toFixed(2) : "n/a"}`;
  });
  for (const p of processors) p.kill("SIGTERM");
  const exit = Math.max(...(await Promise.all(processors.map((p) => p.exited))));
  await produced.publisher.disconnect();
  const db = await mysql.createConnection(mysqlServer);
  const [rows] = await db.query(
    `SELECT COUNT(*) AS n FROM \`${database}_${runtime}\`.fanda_deliveries WHERE status = 'delivered'`,
  );
  await db.query(`DROP DATABASE \`${database}_${runtime}\``);
  await db.end();
  return {
    runtime,
    version,
    drainRate: events / drainSeconds,
    steadyRate: w0 && w1 ? steadyEvents / ((w1.at - w0.at) / 1000) : 0,
    cpuUsPerEvent: w0 && w1 ? ((w1.cpuSeconds - w0.cpuSeconds) * 1e6) / steadyEvents : 0,
    cpuPercent: (afterBacklog.cpuSeconds / drainSeconds) * 100,
    lat: summarize(latencies),
    peakRssMb: peakRss,
    endRssMb: end.rssMb,
    phases,
    batches: metric("fanda_batch_messages_count (\\S+)"),
    logRows: Number((rows as { n: number }[])[0]?.n ?? 0),
    expectedRows: (events + total) * channels.length,
    exit,
  };
};

const results: Measured[] = [];
for (const [i, runtime] of runtimes.entries()) {
  results.push(await measure(runtime, i));
  if (i === 0 && values.plot) {
    await Bun.write(
      values.plot,
      latencySvg(
        latencies,
        `Upload → delivered at ${rate}/s for ${seconds}s (${runtime}; Redis, MySQL, ${channels.join(" + ")})`,
      ),
    );
  }
}

await sink.stop(true);
await slack.stop();
rmSync(work, { recursive: true, force: true });
const admin = kafka.admin();
await admin.connect();
const topics = runtimes.map(topicOf);
await admin.deleteTopics({ topics: [...topics, ...topics.map(dlqTopicOf)] }).catch(() => {});
await admin.disconnect();

const cols = (f: (m: Measured) => string) => results.map(f).join(" | ");
const [base, other] = results;
const ratio = base && other ? ([base, other] as const) : undefined;
console.log(`
### Pipeline end to end vs raw consume (${new Date().toISOString().slice(0, 10)})

\`bun scripts/bench/pipeline.ts --events ${events} --rate ${rate} --seconds ${seconds} --channels ${channels.join(",")} --runtimes ${runtimes.join(",")} --instances ${instances}\`

Backlog produced through the publisher at ${produceRate.toFixed(0)} events/s.
Raw kafkajs consumer: **${rawRate.toFixed(0)} events/s**; kcat: ${kcatRate ? `**${kcatRate.toFixed(0)} events/s**` : "not installed"};
delivering baseline (kafkajs read + one bare POST per event and channel, ${channels.length} per event, 96 in flight): **${bareRate.toFixed(0)} events/s** (${baselineReceived} POSTs).

| measure | ${cols((m) => `${m.runtime} (${m.version})`)} |
|---|${cols(() => "---")}|
| end to end, ${events} events (Kafka → Redis claim → ${channels.join(" + ")} → Redis done → MySQL log), ${instances} instance(s) | ${cols((m) => `**${m.drainRate.toFixed(0)} events/s**`)} |
| ratio to raw kafkajs consume | ${cols((m) => (m.drainRate / rawRate).toFixed(3))} |
| ratio to the delivering baseline | ${cols((m) => (m.drainRate / bareRate).toFixed(2))} |
| **steady drain** (first → last event complete) | ${cols((m) => `**${m.steadyRate.toFixed(0)} events/s**`)} |
| ratio to the delivering baseline's steady rate (${bareResult.steadyEventsPerSecond.toFixed(0)} events/s) | ${cols((m) => `**${(m.steadyRate / bareResult.steadyEventsPerSecond).toFixed(2)}**`)} |
| **process CPU-µs per event** (baseline: ${bareResult.cpuUsPerEvent.toFixed(1)}) | ${cols((m) => `**${m.cpuUsPerEvent.toFixed(1)}** (${(m.cpuUsPerEvent / channels.length).toFixed(1)} per delivery)`)} |
| CPU per event, processor / baseline | ${cols((m) => `**${(m.cpuUsPerEvent / bareResult.cpuUsPerEvent).toFixed(2)}**`)} |
| processor CPU while draining (first instance) | ${cols((m) => `${m.cpuPercent.toFixed(0)}% of one core`)} |
| upload → last channel at ${rate}/s for ${seconds}s: p50 / p95 / p99 / max | ${cols((m) => `${ms(m.lat.p50)} / ${ms(m.lat.p95)} / **${ms(m.lat.p99)}** / ${ms(m.lat.max)} ms`)} |
| RSS peak / at end (GC paced to ${ramMb > 0 ? `${ramMb} MiB` : "the host's RAM"}; baseline peak ${bareResult.peakRssMb.toFixed(0)} MB) | ${cols((m) => `**${m.peakRssMb.toFixed(0)}** / ${m.endRssMb.toFixed(0)} MB`)} |
| batches / mean ms per batch phase | ${cols((m) => `${m.batches} / ${m.phases.join(", ")}`)} |
| delivery log rows, delivered | ${cols((m) => `${m.logRows} of ${m.expectedRows}`)} |
| exit on SIGTERM | ${cols((m) => String(m.exit))} |
${
  ratio
    ? `\nRatio ${ratio[1].runtime} / ${ratio[0].runtime}: throughput ${(ratio[1].drainRate / ratio[0].drainRate).toFixed(2)}, p99 ${(ratio[1].lat.p99 / ratio[0].lat.p99).toFixed(2)}, peak RSS ${(ratio[1].peakRssMb / ratio[0].peakRssMb).toFixed(2)}.\n`
    : ""
}`);
// One machine-readable line for repeated runs (median and spread across them).
console.log(
  `BENCH ${JSON.stringify({
    events,
    channels,
    bare: bareResult,
    runs: results.map((m) => ({
      runtime: m.runtime,
      drainRate: m.drainRate,
      steadyRate: m.steadyRate,
      cpuUsPerEvent: m.cpuUsPerEvent,
      rateRatio: m.steadyRate / bareResult.steadyEventsPerSecond,
      cpuRatio: m.cpuUsPerEvent / bareResult.cpuUsPerEvent,
      peakRssMb: m.peakRssMb,
      p99: m.lat.p99,
    })),
  })}`,
);
process.exit(results.every((m) => m.exit === 0 && m.logRows === m.expectedRows) ? 0 : 1);
