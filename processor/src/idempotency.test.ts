import { expect, test } from "bun:test";
import { idempotencyConformance } from "./idempotency.conformance.ts";
import { createMemoryStore, type MemoryState } from "./idempotency.ts";

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
