import { expect, test } from "bun:test";
import { idempotencyConformance } from "./idempotency.conformance.ts";
import { createMemoryStore, type MemoryState, reconnectOnReadonly } from "./idempotency.ts";

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
