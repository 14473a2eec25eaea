/**
 * Benchmark: local ingest (HTTP → parse → Kafka) against a raw kafkajs producer sending the
 * same messages, in the same run, on the same broker. Bounded in time and count, loopback
 * only. Needs the local stack (scripts/stack up).
 *
 *   bun scripts/bench/ingest.ts [--rate 500] [--seconds 10] [--burst 5000] [--concurrency 32]
 *
 * Phases, each for the ingest and for the baseline (one kafkajs send per upload):
 *   paced: one upload every 1/rate s for `seconds` (open loop: latency is measured from the
 *          scheduled start, so a stall is not hidden by sending less);
 *   burst: `burst` uploads with `concurrency` in flight, as fast as they are answered.
 * Plus the broker's ceiling for this client: a kafkajs sendBatch loop of 100 messages each.
 */
import { logLevel } from "kafkajs";
import { encodeNotification, messageKey } from "../../core/contract.ts";
import { dlqTopicOf, ensureTopics } from "../../core/kafka.ts";
import { parseS3Event, toNotification } from "../../producer/src/s3-event.ts";
import { LOCAL_BROKERS as brokers, freePort, localKafka } from "../../test/support/local.ts";
import { waitFor } from "../../test/support/wait.ts";
import { s3PutEvent } from "../upload.ts";
import { checkOptions, orExit, parseOptions } from "./args.ts";
import { ms, summarize } from "./stats.ts";

const values = orExit(() =>
  parseOptions({
    rate: { default: "500" },
    seconds: { default: "10" },
    burst: { default: "5000" },
    concurrency: { default: "32" },
  }),
);
const { rate, seconds, burst, concurrency } = orExit(() =>
  checkOptions({
    rate: { value: values.rate, min: 1, max: 5000 },
    seconds: { value: values.seconds, min: 1, max: 120 },
    burst: { value: values.burst, min: 1, max: 100_000 },
    concurrency: { value: values.concurrency, min: 1, max: 512 },
  }),
).ints;

const topic = `fanda-bench-${crypto.randomUUID().slice(0, 8)}`;
const kafka = localKafka("fanda-bench", { topic, logLevel: logLevel.ERROR });
await ensureTopics(kafka, topic, { partitions: 6 });

let seq = 0;
const nextEvent = () => s3PutEvent("fanda-bench", [`reports/positive/bench ${seq++}.pdf`]);

/** Runs `send` paced at `rate`/s for `seconds`; latency from each scheduled start. */
async function paced(send: () => Promise<void>) {
  const total = rate * seconds;
  const latencies: number[] = [];
  let errors = 0;
  const t0 = performance.now();
  const inflight: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const due = t0 + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await Bun.sleep(wait);
    inflight.push(
      send().then(
        () => void latencies.push(performance.now() - due),
        () => void errors++,
      ),
    );
  }
  await Promise.all(inflight);
  return { ...summarize(latencies), errors, seconds: (performance.now() - t0) / 1000 };
}

/** Runs `send` `burst` times with `concurrency` in flight. */
async function closedLoop(send: () => Promise<void>) {
  const latencies: number[] = [];
  let errors = 0;
  let next = 0;
  const t0 = performance.now();
  const worker = async () => {
    while (next < burst) {
      next++;
      const start = performance.now();
      try {
        await send();
        latencies.push(performance.now() - start);
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsed = (performance.now() - t0) / 1000;
  return { ...summarize(latencies), errors, perSecond: burst / elapsed };
}

// The ingest, as a separate process like in production, on a free port.
const port = await freePort();
const server = Bun.spawn(["bun", "producer/src/server.ts"], {
  env: {
    ...process.env,
    KAFKA_BROKERS: brokers,
    KAFKA_TOPIC: topic,
    PRODUCER_PORT: String(port),
    LOG_LEVEL: "warn",
  },
  stdout: "inherit",
  stderr: "inherit",
});
const url = `http://127.0.0.1:${port}/s3-events`;
await waitFor("the ingest", async () => (await fetch(`http://127.0.0.1:${port}/healthz`)).ok, {
  timeoutMs: 30_000,
});
const viaIngest = async () => {
  const res = await fetch(url, { method: "POST", body: JSON.stringify(nextEvent()) });
  if (res.status !== 202) throw new Error(`ingest answered ${res.status}`);
  await res.arrayBuffer();
};

// The baseline: the same messages straight from a kafkajs producer with the same settings.
const raw = kafka.producer({
  idempotent: true,
  maxInFlightRequests: 1,
  allowAutoTopicCreation: false,
});
await raw.connect();
const viaRaw = async () => {
  const [o] = parseS3Event(nextEvent()).objects;
  if (!o) throw new Error("no object");
  const n = toNotification(o, "positive");
  await raw.send({
    topic,
    acks: -1,
    messages: [{ key: messageKey(n), value: encodeNotification(n) }],
  });
};

/** The broker's ceiling for this client: sendBatch of 100 messages per request, in a loop. */
async function rawBatchLoop() {
  const t0 = performance.now();
  let sent = 0;
  while (sent < burst) {
    const messages = Array.from({ length: Math.min(100, burst - sent) }, () => {
      const [o] = parseS3Event(nextEvent()).objects;
      if (!o) throw new Error("no object");
      const n = toNotification(o, "positive");
      return { key: messageKey(n), value: encodeNotification(n) };
    });
    await raw.sendBatch({ topicMessages: [{ topic, messages }], acks: -1 });
    sent += messages.length;
  }
  return { perSecond: burst / ((performance.now() - t0) / 1000) };
}

// Warm both paths (JIT, connections, metadata) before measuring.
for (let i = 0; i < 200; i++) await Promise.all([viaIngest(), viaRaw()]);

const ingestPaced = await paced(viaIngest);
const rawPaced = await paced(viaRaw);
const ingestBurst = await closedLoop(viaIngest);
const rawBurst = await closedLoop(viaRaw);
const rawBatch = await rawBatchLoop();

server.kill("SIGTERM");
await server.exited;
await raw.disconnect();
const admin = kafka.admin();
await admin.connect();
await admin.deleteTopics({ topics: [topic, dlqTopicOf(topic)] }).catch(() => {});
await admin.disconnect();

console.log(`
### Ingest vs raw kafkajs (${new Date().toISOString().slice(0, 10)})

\`bun scripts/bench/ingest.ts --rate ${rate} --seconds ${seconds} --burst ${burst} --concurrency ${concurrency}\`

| phase | path | requests | errors | p50 ms | p95 ms | p99 ms | max ms | throughput/s |
|---|---|---|---|---|---|---|---|---|
| paced ${rate}/s × ${seconds}s | ingest (HTTP → parse → Kafka) | ${ingestPaced.count} | ${ingestPaced.errors} | ${ms(ingestPaced.p50)} | ${ms(ingestPaced.p95)} | ${ms(ingestPaced.p99)} | ${ms(ingestPaced.max)} | ${(ingestPaced.count / ingestPaced.seconds).toFixed(0)} |
| paced ${rate}/s × ${seconds}s | raw kafkajs send | ${rawPaced.count} | ${rawPaced.errors} | ${ms(rawPaced.p50)} | ${ms(rawPaced.p95)} | ${ms(rawPaced.p99)} | ${ms(rawPaced.max)} | ${(rawPaced.count / rawPaced.seconds).toFixed(0)} |
| burst ${burst}, ${concurrency} in flight | ingest | ${ingestBurst.count} | ${ingestBurst.errors} | ${ms(ingestBurst.p50)} | ${ms(ingestBurst.p95)} | ${ms(ingestBurst.p99)} | ${ms(ingestBurst.max)} | ${ingestBurst.perSecond.toFixed(0)} |
| burst ${burst}, ${concurrency} in flight | raw kafkajs send | ${rawBurst.count} | ${rawBurst.errors} | ${ms(rawBurst.p50)} | ${ms(rawBurst.p95)} | ${ms(rawBurst.p99)} | ${ms(rawBurst.max)} | ${rawBurst.perSecond.toFixed(0)} |
| ${burst} messages | raw kafkajs sendBatch ×100 loop | ${burst} | 0 | | | | | ${rawBatch.perSecond.toFixed(0)} |

Ratios: ingest/raw-send burst throughput ${(ingestBurst.perSecond / rawBurst.perSecond).toFixed(2)}, ingest/raw-sendBatch throughput ${(ingestBurst.perSecond / rawBatch.perSecond).toFixed(2)}, ingest/raw-send paced p99 ${(ingestPaced.p99 / rawPaced.p99).toFixed(2)}.
`);
process.exit(0);
