import { describe, expect, test } from "bun:test";
import { aNotification } from "../../test/support/notifications.ts";
import { createSqliteLog } from "./delivery-log/index.ts";
import { idempotencyConformance } from "./idempotency.conformance.ts";
import { createMemoryStore, type MemoryState, withDeliveryLogFallback } from "./idempotency.ts";
import { createMetrics } from "./metrics.ts";
import { reconnectOnReadonly } from "./redis.ts";
import { createStatusReport } from "./status-report.ts";

// Stores made for the same space share one state, like two workers on one Redis; the clock
// is virtual, so expiry needs no real waiting.
let clock = 0;
const states = new Map<string, MemoryState>();

idempotencyConformance(
  "memory",
  ({ space, ...options }) => {
    const state = states.get(space) ?? new Map();
    states.set(space, state);
    return createMemoryStore({ ...options, state, now: () => clock });
  },
  async (ms) => {
    clock += ms;
  },
);

test("the memory store is always healthy", () => {
  expect(createMemoryStore().healthy()).toBe(true);
});

test("a worker whose heartbeat stopped (crashed) loses its claims after its liveness TTL, not the claim TTL", async () => {
  const state: MemoryState = new Map();
  let now = 0;
  const options = { state, now: () => now, claimTtlMs: 120_000, ownerTtlMs: 15_000 };
  const crashed = createMemoryStore({ ...options, owner: "crashed" });
  const successor = createMemoryStore({ ...options, owner: "successor" });
  const k = { eventId: "e1", channel: "webhook" };
  expect(await crashed.claim([k])).toEqual(["claimed"]);
  now += 10_000;
  expect(await successor.claim([k])).toEqual(["busy"]);
  now += 6_000; // 16 s since the crashed worker's last beat: gone
  expect(await successor.claim([k])).toEqual(["claimed"]);
  await successor.close();
});

test("READONLY (a demoted primary, also inside a script's error) reconnects and resends; other errors do not", () => {
  expect(
    reconnectOnReadonly(new Error("READONLY You can't write against a read only replica.")),
  ).toBe(2);
  expect(
    reconnectOnReadonly(new Error("ERR Error running script: -READONLY You can't write")),
  ).toBe(2);
  expect(reconnectOnReadonly(new Error("NOSCRIPT No matching script"))).toBe(false);
  expect(reconnectOnReadonly(new Error("ERR value is not READONLYISH"))).toBe(false);
});

describe("the delivery log as the second line", () => {
  const delivered = async (keys: { eventId: string; channel: string }[]) => {
    const log = createSqliteLog({ path: ":memory:" });
    await log.migrate();
    await log.write(
      keys.map((k) => ({
        notification: aNotification({ eventId: k.eventId }),
        channel: k.channel,
        status: "delivered" as const,
        attempts: 1,
        firstAttemptAt: new Date(0),
        finishedAt: new Date(1),
      })),
    );
    return log;
  };

  test("a forgotten done mark (store emptied) is found in the log: done, and marked again", async () => {
    const state: MemoryState = new Map();
    const k = { eventId: "a".repeat(32), channel: "webhook" };
    const other = { eventId: "b".repeat(32), channel: "webhook" };
    const log = await delivered([k]);
    const store = withDeliveryLogFallback(createMemoryStore({ state }), log);
    await store.claim([k]);
    await store.complete([k]);
    state.clear(); // the store forgot everything, as Redis failed over to an empty replica
    expect(await store.claim([k, other])).toEqual(["done", "claimed"]);
    const plain = createMemoryStore({ state, owner: "plain" });
    expect(await plain.claim([k])).toEqual(["done"]);
    await Promise.all([store.close(), plain.close(), log.close()]);
  });

  test("a log known to be down is not asked: claims stand", async () => {
    let asked = 0;
    const log = {
      delivered: async (keys: readonly unknown[]) => {
        asked++;
        return keys.map(() => true);
      },
      healthy: () => false,
    };
    const store = withDeliveryLogFallback(createMemoryStore(), log);
    expect(await store.claim([{ eventId: "d".repeat(32), channel: "webhook" }])).toEqual([
      "claimed",
    ]);
    expect(asked).toBe(0);
    await store.close();
  });

  test("a log that does not answer (a hung database) does not hold claims: they stand, and it is not asked again until that lookup ends", async () => {
    let asked = 0;
    let answer: ((found: boolean[]) => void) | undefined;
    const log = {
      delivered: (keys: readonly unknown[]) => {
        asked++;
        if (asked === 1) return new Promise<boolean[]>((resolve) => (answer = resolve));
        return Promise.resolve(keys.map(() => true));
      },
    };
    const errors: unknown[] = [];
    const store = withDeliveryLogFallback(createMemoryStore(), log, {
      timeoutMs: 1,
      onUnavailable: (err) => errors.push(err),
    });
    const k = (c: string) => ({ eventId: c.repeat(32), channel: "webhook" });
    expect(await store.claim([k("e")])).toEqual(["claimed"]);
    expect(errors).toHaveLength(1);
    // Still hung: later claims do not wait for the log again.
    expect(await store.claim([k("f")])).toEqual(["claimed"]);
    expect(asked).toBe(1);
    answer?.([false]);
    await Bun.sleep(0);
    expect(await store.claim([k("9")])).toEqual(["done"]);
    expect(asked).toBe(2);
    await store.close();
  });

  test("a lookup timeout that is not a positive integer is refused", () => {
    const log = { delivered: async () => [] };
    expect(() => withDeliveryLogFallback(createMemoryStore(), log, { timeoutMs: 0 })).toThrow(
      /timeoutMs/,
    );
  });

  test("without the log's answer (closed database) claims stand as the store gave them", async () => {
    const k = { eventId: "c".repeat(32), channel: "webhook" };
    const log = await delivered([k]);
    await log.close();
    const errors: unknown[] = [];
    const store = withDeliveryLogFallback(createMemoryStore(), log, {
      onUnavailable: (err) => errors.push(err),
    });
    expect(await store.claim([k])).toEqual(["claimed"]);
    expect(errors).toHaveLength(1);
    await store.close();
  });
});

describe("the in-memory store is bounded", () => {
  test("past maxEntries the oldest keys are evicted, never more than the bound are kept", async () => {
    const state: MemoryState = new Map();
    const store = createMemoryStore({ state, maxEntries: 3 });
    const keys = Array.from({ length: 5 }, (_, i) => ({ eventId: `e${i}`, channel: "webhook" }));
    for (const k of keys) {
      await store.claim([k]);
      await store.complete([k]);
    }
    expect(state.size).toBe(3); // this worker's liveness key and the two newest done marks
    expect(await store.claim([keys[4] as (typeof keys)[0]])).toEqual(["done"]);
    expect(await store.claim([keys[0] as (typeof keys)[0]])).toEqual(["claimed"]);
    expect(store.describe()).toMatchObject({ kind: "memory", bounded: true, maxEntries: 3 });
    expect(store.describe()).toMatchObject({ evicted: 4 }); // e0..e2, then e3 for e0's new claim
    await store.close();
  });

  test("a bound that is not a positive integer is refused", () => {
    expect(() => createMemoryStore({ maxEntries: 0 })).toThrow(/maxEntries/);
    expect(() => createMemoryStore({ maxEntries: 1.5 })).toThrow(/maxEntries/);
  });

  test("/readyz's dependencies say the store is in memory and bounded", () => {
    const store = createMemoryStore({ maxEntries: 1000 });
    const report = createStatusReport({
      version: "v",
      startedAt: "2026-12-01T00:00:00.000Z",
      topic: "t",
      groupId: "g",
      metrics: createMetrics({ defaultMetrics: false }),
      consumerState: () => ({ running: true, joined: true, partitions: [], paused: [] }),
      lag: { last: () => ({ partitions: [] }) },
      recent: { entries: () => [] },
      store,
      deliveryLog: { kind: "sqlite", healthy: () => true },
      dispatch: { health: () => ({}) },
      channels: [],
    });
    try {
      expect(report.dependencies().idempotency).toMatchObject({
        kind: "memory",
        healthy: true,
        bounded: true,
        maxEntries: 1000,
        evicted: 0,
      });
    } finally {
      report.stop();
    }
  });
});
