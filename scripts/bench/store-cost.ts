/**
 * Benchmark: process CPU-µs per key of the processor's per-delivery store work against the
 * machine's Redis and MariaDB (scripts/stack up): a batch's claim, the done marks (one
 * `complete` call per delivery, as the handler makes them, all in flight together), and the
 * delivery-log lookup a claim makes for every key it finds open (withDeliveryLogFallback;
 * here against an empty table: the CPU is the client's, building the query and reading the
 * answer). CPU is this process's `process.cpuUsage()`, so it holds on a noisy machine better
 * than wall time. `--root <dir>` measures another checkout's code (a `git archive` of an
 * earlier commit beside this one, with node_modules linked), for before/after in one sitting.
 *
 *   bun scripts/bench/store-cost.ts [--batches 100] [--keys 500] [--root .]
 */
import { resolve } from "node:path";
import mysql from "mysql2/promise";
import { checkOptions, orExit, parseOptions } from "./args.ts";

const values = orExit(() =>
  parseOptions({ batches: { default: "100" }, keys: { default: "500" }, root: { default: "." } }),
);
const { batches, keys: perBatch } = orExit(() =>
  checkOptions({
    batches: { value: values.batches, min: 1, max: 10_000 },
    keys: { value: values.keys, min: 1, max: 5000 },
  }),
).ints;
const root = resolve(values.root ?? ".");
const { createMysqlLog } = (await import(
  `${root}/processor/src/delivery-log/mysql.ts`
)) as typeof import("../../processor/src/delivery-log/mysql.ts");
const { createRedisStore } = (await import(
  `${root}/processor/src/idempotency.ts`
)) as typeof import("../../processor/src/idempotency.ts");

const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const server = process.env.MYSQL_SERVER_URL ?? "mysql://root@127.0.0.1:3306";
const run = crypto.randomUUID().slice(0, 8);
const database = `fanda_bench_store_${run}`;
const admin = await mysql.createConnection(server);
await admin.query(`CREATE DATABASE \`${database}\``);
const log = createMysqlLog({ url: `${server}/${database}` });
await log.migrate();
const store = createRedisStore({
  url: redisUrl,
  prefix: `fanda-bench-store:${run}:`,
  claimTtlMs: 60_000,
  doneTtlMs: 120_000,
});

const keysOf = (batch: number) =>
  Array.from({ length: perBatch }, (_, i) => ({
    eventId: (batch * perBatch + i).toString(16).padStart(32, "0"),
    channel: i % 2 === 0 ? "webhook" : "slack",
  }));
const ops: [string, (batch: number) => Promise<unknown>][] = [
  ["claim (one call per batch)", (b) => store.claim(keysOf(b))],
  [
    "complete (one call per delivery, all in flight)",
    (b) => Promise.all(keysOf(b).map((k) => store.complete([k]))),
  ],
  ["delivery-log lookup (one query per batch)", (b) => log.delivered(keysOf(b))],
];
const lines: string[] = [];
for (const [name, op] of ops) {
  for (let b = 0; b < 5; b++) await op(b); // warm-up
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let b = 10; b < 10 + batches; b++) await op(b);
  const cpu = process.cpuUsage(cpu0);
  const n = batches * perBatch;
  lines.push(
    `| ${name} | ${((cpu.user + cpu.system) / n).toFixed(2)} | ${((performance.now() - t0) / batches).toFixed(1)} |`,
  );
}
await store.close();
await log.close();
await admin.query(`DROP DATABASE \`${database}\``);
await admin.end();
console.log(`
\`bun scripts/bench/store-cost.ts --batches ${batches} --keys ${perBatch} --root ${values.root}\`

| operation, ${perBatch} keys per batch | CPU-µs per key | wall ms per batch |
|---|---|---|
${lines.join("\n")}
`);
process.exit(0);
