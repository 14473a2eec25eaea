/**
 * The behaviour every {@link IdempotencyStore} must have, as one suite run against each
 * implementation (memory in unit tests, Redis in integration tests).
 */
import { describe, expect, test } from "bun:test";
import type { DeliveryKey, IdempotencyStore, StoreOptions } from "./idempotency.ts";

/** Makes a store for a test; the same `space` gives stores that share state. */
export type StoreFactory = (options: StoreOptions & { space: string }) => IdempotencyStore;

/** Registers the conformance suite for one implementation. */
export function idempotencyConformance(
  name: string,
  make: StoreFactory,
  expireWait: (ms: number) => Promise<void>,
) {
  describe(`${name} idempotency store`, () => {
    const key = (): DeliveryKey => ({
      eventId: crypto.randomUUID().replace(/-/g, ""),
      channel: "webhook",
    });

    test("the first claim wins; another worker is busy; the same worker may re-claim", async () => {
      const space = crypto.randomUUID();
      const a = make({ space, owner: "a" });
      const b = make({ space, owner: "b" });
      const k = key();
      expect(await a.claim([k])).toEqual(["claimed"]);
      expect(await b.claim([k])).toEqual(["busy"]);
      expect(await a.claim([k])).toEqual(["claimed"]);
      await Promise.all([a.close(), b.close()]);
    });

    test("after complete, every claim says done", async () => {
      const space = crypto.randomUUID();
      const a = make({ space, owner: "a" });
      const b = make({ space, owner: "b" });
      const k = key();
      await a.claim([k]);
      await a.complete([k]);
      expect(await a.claim([k])).toEqual(["done"]);
      expect(await b.claim([k])).toEqual(["done"]);
      await Promise.all([a.close(), b.close()]);
    });

    test("release frees only our own claim", async () => {
      const space = crypto.randomUUID();
      const a = make({ space, owner: "a" });
      const b = make({ space, owner: "b" });
      const k = key();
      await a.claim([k]);
      await b.release([k]);
      expect(await b.claim([k])).toEqual(["busy"]);
      await a.release([k]);
      expect(await b.claim([k])).toEqual(["claimed"]);
      await Promise.all([a.close(), b.close()]);
    });

    test("a claim that is never completed expires, so a crashed worker does not block", async () => {
      const space = crypto.randomUUID();
      const a = make({ space, owner: "a", claimTtlMs: 150 });
      const b = make({ space, owner: "b", claimTtlMs: 150 });
      const k = key();
      await a.claim([k]);
      expect(await b.claim([k])).toEqual(["busy"]);
      await expireWait(200);
      expect(await b.claim([k])).toEqual(["claimed"]);
      await Promise.all([a.close(), b.close()]);
    });

    test("a live worker's claims stay its own; once it has stopped they are taken over at once", async () => {
      const space = crypto.randomUUID();
      const options = { space, claimTtlMs: 60_000, ownerTtlMs: 150 };
      const a = make({ ...options, owner: "a" });
      const b = make({ ...options, owner: "b" });
      const k = key();
      expect(await a.claim([k])).toEqual(["claimed"]);
      await a.claim([key()]); // a live worker keeps claiming (and beating)
      expect(await b.claim([k])).toEqual(["busy"]);
      await a.close();
      expect(await b.claim([k])).toEqual(["claimed"]);
      await b.close();
    });

    test("extend renews our claim past its TTL, and never someone else's", async () => {
      const space = crypto.randomUUID();
      const a = make({ space, owner: "a", claimTtlMs: 1000 });
      const b = make({ space, owner: "b", claimTtlMs: 1000 });
      const k = key();
      await a.claim([k]);
      await expireWait(700);
      expect(await a.extend([k, key()])).toEqual([true, false]);
      await expireWait(700); // past the first claim's TTL, within the renewed one
      expect(await b.claim([k])).toEqual(["busy"]);
      expect(await b.extend([k])).toEqual([false]);
      await Promise.all([a.close(), b.close()]);
    });

    test("many keys in one call keep their order and are independent per channel", async () => {
      const space = crypto.randomUUID();
      const a = make({ space, owner: "a" });
      const k1 = key();
      const k2 = { ...k1, channel: "log" };
      const k3 = key();
      await a.claim([k1]);
      await a.complete([k1]);
      expect(await a.claim([k1, k2, k3])).toEqual(["done", "claimed", "claimed"]);
      expect(await a.claim([])).toEqual([]);
      await a.close();
    });

    test("refuses TTLs that make no sense", () => {
      expect(() => make({ space: "x", claimTtlMs: 10 })).toThrow(/claimTtlMs/);
      expect(() => make({ space: "x", claimTtlMs: 1000, doneTtlMs: 500 })).toThrow(/doneTtlMs/);
      expect(() => make({ space: "x", ownerTtlMs: 50 })).toThrow(/ownerTtlMs/);
    });
  });
}
