/**
 * The delivering baseline of the pipeline benchmark, run as its own process like the
 * processor: reads a topic from the beginning with kafkajs and POSTs each event once per
 * channel to a URL, 32 in flight per partition and 3 partitions at once (the processor's
 * defaults) — no idempotency, no delivery log, no retries, no templates. Prints as one JSON
 * line the events/s it delivered, and over the steady window (first event taken → last
 * delivered, start-up and group join left out) the events/s, its own process CPU-µs per
 * event (`process.cpuUsage()`) and its peak RSS, then exits.
 *
 *   bun scripts/bench/bare-delivery.ts --topic T --url U --events N [--channels 2]
 */
import { localKafka } from "../../test/support/local.ts";
import { waitFor } from "../../test/support/wait.ts";
import { checkOptions, orExit, parseOptions } from "./args.ts";

const values = orExit(() =>
  parseOptions({ topic: {}, url: {}, events: {}, channels: { default: "1" } }),
);
const { events, channels } = orExit(() =>
  checkOptions({
    events: { value: values.events, min: 1, max: 1_000_000 },
    channels: { value: values.channels, min: 1, max: 4 },
  }),
).ints;
if (!values.topic || !values.url) {
  console.error("--topic and --url are required");
  process.exit(2);
}
const url = values.url;
const kafka = localKafka("fanda-bench-bare", { topic: values.topic });
const consumer = kafka.consumer({
  groupId: `${values.topic}-bare-${crypto.randomUUID().slice(0, 6)}`,
  maxWaitTimeInMs: 200,
});
let done = 0;
let first: { at: number; cpu: NodeJS.CpuUsage; done: number } | undefined;
let last: { at: number; cpu: NodeJS.CpuUsage } | undefined;
let peakRss = 0;
const rssSampler = setInterval(() => {
  peakRss = Math.max(peakRss, process.memoryUsage.rss());
}, 200);
await consumer.connect();
await consumer.subscribe({ topics: [values.topic], fromBeginning: true });
const start = performance.now();
await consumer.run({
  partitionsConsumedConcurrently: 3,
  eachBatch: async ({ batch }) => {
    first ??= { at: performance.now(), cpu: process.cpuUsage(), done };
    let next = 0;
    const worker = async () => {
      while (next < batch.messages.length) {
        const m = batch.messages[next++];
        const body = JSON.stringify(JSON.parse(String(m?.value)));
        for (let c = 0; c < channels; c++) {
          const res = await fetch(url, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body,
          });
          await res.arrayBuffer();
        }
        done++;
        if (done === events) last = { at: performance.now(), cpu: process.cpuUsage() };
      }
    };
    await Promise.all(Array.from({ length: 32 }, worker));
  },
});
await waitFor("the backlog to be delivered", () => done >= events, {
  timeoutMs: 600_000,
  intervalMs: 5,
});
const rate = events / ((performance.now() - start) / 1000);
clearInterval(rssSampler);
await consumer.disconnect();
const steady = first && last ? events - first.done : 0;
const usedUs =
  first && last ? last.cpu.user + last.cpu.system - first.cpu.user - first.cpu.system : 0;
console.log(
  JSON.stringify({
    eventsPerSecond: rate,
    steadyEventsPerSecond: first && last ? steady / ((last.at - first.at) / 1000) : 0,
    cpuUsPerEvent: steady > 0 ? usedUs / steady : 0,
    peakRssMb: peakRss / 2 ** 20,
  }),
);
process.exit(0);
