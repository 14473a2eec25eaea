import { describe, expect, test } from "bun:test";
import { createLogger } from "../../../core/log.ts";
import type { DeliveryKey } from "../idempotency.ts";
import { createSettler } from "./store-retry.ts";

const keys: DeliveryKey[] = [{ eventId: "e1", channel: "slack" }];

/** A store whose calls fail while `down` is true, and a clock the waits move. */
function fixture() {
  const clock = { now: 0 };
  const calls: string[] = [];
  const state = { down: true };
  const lines: string[] = [];
  const store = {
    complete: async () => {
      calls.push("complete");
      if (state.down) throw new Error("redis down");
    },
    release: async () => {
      calls.push("release");
      if (state.down) throw new Error("redis down");
    },
  };
  const make = (signal = new AbortController().signal, afterWait?: () => void) =>
    createSettler({
      store,
      logger: createLogger({ sink: (l) => void lines.push(l) }),
      abortSignal: signal,
      retryMs: 10_000,
      now: () => clock.now,
      sleep: async (ms) => {
        clock.now += ms;
        afterWait?.();
      },
    });
  return { clock, calls, state, lines, make };
}

describe("store-retry policy", () => {
  test("nothing to mark, nothing called", async () => {
    const f = fixture();
    await f.make()("complete", []);
    expect(f.calls).toEqual([]);
  });

  test("an outage shorter than the window: the mark lands once the store is back", async () => {
    const f = fixture();
    let waits = 0;
    await f.make(undefined, () => {
      if (++waits === 3) f.state.down = false;
    })("complete", keys);
    expect(f.calls).toEqual(["complete", "complete", "complete", "complete"]);
    expect(f.lines).toEqual([]);
  });

  test("an outage longer than the window: given up, logged, never thrown", async () => {
    const f = fixture();
    await f.make()("release", keys);
    expect(f.clock.now).toBeGreaterThanOrEqual(10_000);
    expect(f.lines.join("\n")).toContain("idempotency release failed; a redelivery may resend");
  });

  test("one deadline per outage: a mark arriving late in it gives up with the first, not a window later", async () => {
    const f = fixture();
    const settle = f.make();
    await settle("complete", keys);
    const started = f.clock.now;
    await settle("complete", keys);
    expect(f.clock.now).toBe(started);
    expect(f.lines).toHaveLength(2);
    f.state.down = false;
    await settle("complete", keys);
    f.state.down = true;
    const afterRecovery = f.clock.now;
    await settle("complete", keys);
    expect(f.clock.now - afterRecovery).toBeGreaterThanOrEqual(10_000);
  });

  test("a shutdown abort gives up at once", async () => {
    const f = fixture();
    const abort = new AbortController();
    abort.abort();
    await f.make(abort.signal)("complete", keys);
    expect(f.calls).toEqual(["complete"]);
    expect(f.clock.now).toBe(0);
  });

  test("refuses a negative window", () => {
    expect(() =>
      createSettler({
        store: { complete: async () => {}, release: async () => {} },
        logger: createLogger({ sink: () => {} }),
        abortSignal: new AbortController().signal,
        retryMs: -1,
      }),
    ).toThrow(/retryMs/);
  });
});
