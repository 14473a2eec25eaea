/**
 * Provider limits shared through the machine's Redis (scripts/stack up): two limit sets on
 * separate connections stand for two pods.
 */
import { afterEach, describe, expect, test } from "bun:test";
import fc from "fast-check";
import { Redis } from "ioredis";
import { freePort } from "../../test/support/local.ts";
import { waitFor } from "../../test/support/wait.ts";
import { ConfigError } from "./errors.ts";
import { localRateLimiter } from "./rate-limit.ts";
import { createRedisRateLimits, type RedisRateLimits } from "./rate-limit-redis.ts";

const url = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const opened: RedisRateLimits[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((l) => l.close()));
});

/** A pod's limits with a shared fixed clock; sleeps are recorded, not slept. */
function pod(prefix: string, clock?: { t: number }, extra: { onFallback?: () => void } = {}) {
  const waits: number[] = [];
  const limits = createRedisRateLimits({
    url,
    prefix,
    ...(clock ? { now: () => clock.t } : {}),
    sleep: async (ms) => {
      waits.push(ms);
    },
    ...extra,
  });
  opened.push(limits);
  return { limits, waits };
}

const space = () => `fanda-test:rate:${crypto.randomUUID()}:`;

/** A key's value, read on a connection of its own. */
async function redisGet(key: string): Promise<string | null> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    return await client.get(key);
  } finally {
    client.disconnect();
  }
}

describe("rate limits shared through Redis", () => {
  test("two pods on one key keep one schedule: the burst once, then one slot per interval between them", async () => {
    const prefix = space();
    const clock = { t: 1_000_000 };
    const a = pod(prefix, clock);
    const b = pod(prefix, clock);
    const la = a.limits.limiter("slack:#alerts", { rate: 2, burst: 3 });
    const lb = b.limits.limiter("slack:#alerts", { rate: 2, burst: 3 });
    for (let i = 0; i < 3; i++) {
      await la.take();
      await lb.take();
    }
    // Six takes at one instant: three go at once (the burst), the rest 500 ms apart.
    expect([...a.waits, ...b.waits].sort((x, y) => x - y)).toEqual([500, 1000, 1500]);
  });

  test("without sharing (the negative): each pod lets its own burst through, twice the provider's limit", async () => {
    const waits: number[] = [];
    const clockless = (key: string) =>
      localRateLimiter(key, { rate: 2, burst: 3, onWait: (ms) => waits.push(ms) });
    const la = clockless("slack:#alerts");
    const lb = clockless("slack:#alerts");
    for (let i = 0; i < 3; i++) {
      await la.take();
      await lb.take();
    }
    expect(waits).toEqual([]);
  });

  test("a 429's block on one pod holds every pod", async () => {
    const prefix = space();
    const clock = { t: 5_000_000 };
    const a = pod(prefix, clock);
    const b = pod(prefix, clock);
    const la = a.limits.limiter("email", { rate: 10 });
    const lb = b.limits.limiter("email", { rate: 10 });
    await la.take();
    la.block(5_000);
    // block() is fire-and-forget; the next command on the same connection runs after it.
    await a.limits.limiter("email", { rate: 10 }).take();
    clock.t += 1_000;
    await lb.take();
    expect(a.waits).toEqual([5_000]);
    expect(b.waits).toEqual([4_100]);
    expect(lb.waitMs()).toBeGreaterThan(0);
  });

  test("a pod holds at most a burst's worth of reservations; takers aborted while waiting for one reserve nothing", async () => {
    const prefix = space();
    const clock = { t: 7_000_000 };
    const sleeping: (() => void)[] = [];
    const limits = createRedisRateLimits({
      url,
      prefix,
      now: () => clock.t,
      // Sleeps end only when the test says: the reservations stay held meanwhile.
      sleep: () => new Promise<void>((resolve) => sleeping.push(resolve)),
    });
    opened.push(limits);
    const l = limits.limiter("email", { rate: 1, burst: 2 });
    const ac = new AbortController();
    const takes = Array.from({ length: 10 }, () =>
      l.take(ac.signal).then(
        () => "sent",
        () => "aborted",
      ),
    );
    // The burst goes at once (two slots, no wait); then two takers hold the pod's two
    // permits while they sleep for their slots; the other six wait here, reserving nothing.
    await waitFor("the reservations a burst allows", () => sleeping.length === 2, {
      timeoutMs: 3_000,
    });
    await Bun.sleep(50); // were a third reserving, its answer would be in by now
    const tat = Number(await redisGet(`${prefix}email`));
    expect(tat).toBe(clock.t + 4_000);
    ac.abort(new Error("shutting down"));
    for (const wake of sleeping) wake();
    const outcomes = await Promise.all(takes);
    expect(outcomes.filter((o) => o === "sent")).toHaveLength(4);
    expect(outcomes.filter((o) => o === "aborted")).toHaveLength(6);
    expect(Number(await redisGet(`${prefix}email`))).toBe(tat);
  });

  test("block(0) and negative blocks change nothing", async () => {
    const prefix = space();
    const clock = { t: 8_000_000 };
    const { limits } = pod(prefix, clock);
    const l = limits.limiter("slack:#x", { rate: 1 });
    await l.take();
    const before = await redisGet(`${prefix}slack:#x`);
    l.block(0);
    l.block(-5_000);
    await l.take().catch(() => {}); // one more command on the connection: the blocks went first
    expect(Number(await redisGet(`${prefix}slack:#x`))).toBe(Number(before) + 1_000);
  });

  test("on Redis' own clock: ten takes between two pods span at least nine intervals", async () => {
    const prefix = space();
    const a = pod(prefix);
    const b = pod(prefix);
    const la = a.limits.limiter("email", { rate: 10 });
    const lb = b.limits.limiter("email", { rate: 10 });
    const started = performance.now();
    for (let i = 0; i < 5; i++) await Promise.all([la.take(), lb.take()]);
    const elapsed = performance.now() - started;
    // The last slot is 900 ms after the first; time spent getting there only adds to it.
    expect(Math.max(...a.waits, ...b.waits) + elapsed).toBeGreaterThanOrEqual(850);
  });

  test("keys are data: any Slack channel name gets a schedule of its own and touches no other", async () => {
    const prefix = space();
    const clock = { t: 9_000_000 };
    const { limits, waits } = pod(prefix, clock);
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(
          fc.oneof(fc.string(), fc.constantFrom("__proto__", "constructor", "*", "{x}", "")),
          { minLength: 2, maxLength: 4 },
        ),
        async (names) => {
          clock.t += 1_000_000; // every earlier schedule is long past
          const before = waits.length;
          const run = `${crypto.randomUUID()}:`;
          for (const n of names) await limits.limiter(`slack:${run}${n}`, { rate: 1 }).take();
          expect(waits.length).toBe(before);
          await limits.limiter(`slack:${run}${names[0]}`, { rate: 1 }).take();
          expect(waits.slice(before)).toEqual([1000]);
        },
      ),
      { numRuns: 25 },
    );
  });

  test("Redis unreachable: takes fall back to this pod's own pacing and say so once", async () => {
    const fallbacks: string[] = [];
    const limits = createRedisRateLimits({
      url: `redis://127.0.0.1:${await freePort()}`,
      onFallback: (key) => fallbacks.push(key),
    });
    opened.push(limits);
    const l = limits.limiter("email", { rate: 1000 });
    await l.take();
    await l.take();
    expect(fallbacks).toEqual(["email"]);
  });

  test("an aborted take rejects with the signal's reason", async () => {
    const limits = createRedisRateLimits({ url, prefix: space() });
    opened.push(limits);
    const l = limits.limiter("email", { rate: 0.5 });
    await l.take();
    const ac = new AbortController();
    const pending = l.take(ac.signal);
    ac.abort(new Error("shutting down"));
    await expect(pending).rejects.toThrow("shutting down");
  });

  test.each([
    ["not a url", "REDIS_URL: not a valid URL"],
    ["http://127.0.0.1:6379", "REDIS_URL: expected redis:// or rediss://"],
  ])("refuses REDIS_URL %p", (bad, message) => {
    expect(() => createRedisRateLimits({ url: bad })).toThrow(ConfigError);
    expect(() => createRedisRateLimits({ url: bad })).toThrow(message);
  });
});
