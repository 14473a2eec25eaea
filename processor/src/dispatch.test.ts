import { describe, expect, test } from "bun:test";
import type { Notification } from "../../producer/src/contract.ts";
import { createLogger } from "../../producer/src/log.ts";
import type { Channel } from "./channels/index.ts";
import { type ChannelOutcome, createDispatcher } from "./dispatch.ts";
import { ChannelError } from "./errors.ts";

const logger = createLogger({ sink: () => {} });
const n = { eventId: "0123456789abcdef0123456789abcdef" } as Notification;
const never = new AbortController().signal;

/** A channel that answers from a script: each call takes the next step. */
function scripted(name: string, steps: (() => Promise<{ providerId?: string }>)[]) {
  const calls: number[] = [];
  const channel: Channel = {
    name,
    send: async () => {
      calls.push(Date.now());
      const step = steps[Math.min(calls.length - 1, steps.length - 1)];
      if (!step) throw new Error("no step");
      return step();
    },
    close: async () => {},
  };
  return { channel, calls };
}
const ok = (providerId?: string) => async () => (providerId ? { providerId } : {});
const fail =
  (retriable: boolean, extra: { retryAfterMs?: number } = {}) =>
  async () => {
    throw new ChannelError("x", retriable ? "503" : "400", { retriable, ...extra });
  };

describe("createDispatcher", () => {
  test("delivers to every channel and reports each outcome", async () => {
    const a = scripted("a", [ok("id-1")]);
    const b = scripted("b", [ok()]);
    const seen: ChannelOutcome[] = [];
    const dispatch = createDispatcher({
      channels: [a.channel, b.channel],
      logger,
      onOutcome: (_n, o) => seen.push(o),
    });
    const result = await dispatch(n, never);
    expect(result.delivered).toBe(true);
    expect(result.outcomes.map((o) => [o.channel, o.status, o.attempts])).toEqual([
      ["a", "delivered", 1],
      ["b", "delivered", 1],
    ]);
    expect(result.outcomes[0]).toMatchObject({ providerId: "id-1" });
    expect(seen).toHaveLength(2);
  });

  test("retries retriable failures with growing, jittered backoff", async () => {
    const waits: number[] = [];
    const a = scripted("a", [fail(true), fail(true), fail(true), ok()]);
    const dispatch = createDispatcher({
      channels: [a.channel],
      logger,
      retryBaseMs: 100,
      retryMaxMs: 250,
      random: () => 0.999,
      sleep: async (ms) => void waits.push(ms),
    });
    const result = await dispatch(n, never);
    expect(result.outcomes[0]).toMatchObject({ status: "delivered", attempts: 4 });
    expect(waits).toEqual([99, 199, 249]);
  });

  test("honours the provider's Retry-After within the cap", async () => {
    const waits: number[] = [];
    const a = scripted("a", [fail(true, { retryAfterMs: 1500 }), ok()]);
    const dispatch = createDispatcher({
      channels: [a.channel],
      logger,
      retryBaseMs: 10,
      retryMaxMs: 1000,
      sleep: async (ms) => void waits.push(ms),
    });
    await dispatch(n, never);
    expect(waits).toEqual([1000]);
  });

  test("does not retry a final failure", async () => {
    const a = scripted("a", [fail(false), ok()]);
    const dispatch = createDispatcher({ channels: [a.channel], logger, sleep: async () => {} });
    const result = await dispatch(n, never);
    expect(result.delivered).toBe(false);
    expect(result.outcomes[0]).toMatchObject({ status: "failed", attempts: 1 });
    expect(a.calls).toHaveLength(1);
  });

  test("gives up after maxAttempts with the last error", async () => {
    const a = scripted("a", [fail(true)]);
    const dispatch = createDispatcher({
      channels: [a.channel],
      logger,
      maxAttempts: 3,
      sleep: async () => {},
    });
    const result = await dispatch(n, never);
    const outcome = result.outcomes[0];
    expect(outcome).toMatchObject({ status: "failed", attempts: 3 });
    expect(outcome?.status === "failed" && outcome.error.message).toContain("503");
  });

  test("treats a programming error in a channel as final", async () => {
    const a = scripted("a", [
      async () => {
        throw new TypeError("cannot read properties of undefined");
      },
    ]);
    const dispatch = createDispatcher({ channels: [a.channel], logger, sleep: async () => {} });
    expect((await dispatch(n, never)).outcomes[0]).toMatchObject({ status: "failed", attempts: 1 });
  });

  test("one failing channel does not block or fail another", async () => {
    const { promise: bDone, resolve } = Promise.withResolvers<void>();
    const a = scripted("a", [
      async () => {
        await bDone;
        throw new ChannelError("a", "400", { retriable: false });
      },
    ]);
    const b = scripted("b", [
      async () => {
        resolve();
        return {};
      },
    ]);
    const dispatch = createDispatcher({ channels: [a.channel, b.channel], logger });
    const result = await dispatch(n, never);
    expect(result.outcomes.map((o) => o.status)).toEqual(["failed", "delivered"]);
  });

  test("stops retrying when the signal aborts", async () => {
    const controller = new AbortController();
    const a = scripted("a", [fail(true)]);
    const dispatch = createDispatcher({
      channels: [a.channel],
      logger,
      maxAttempts: 100,
      sleep: async () => {
        controller.abort();
        throw new Error("aborted");
      },
    });
    const result = await dispatch(n, controller.signal);
    expect(result.outcomes[0]).toMatchObject({ status: "failed", attempts: 1 });
  });

  test.each([
    [{ channels: [] }, /at least one channel/],
    [{ maxAttempts: 0 }, /maxAttempts/],
    [{ retryBaseMs: 0 }, /retryBaseMs/],
    [{ retryBaseMs: 100, retryMaxMs: 50 }, /retryMaxMs/],
  ])("refuses bad options %p", (options, message) => {
    expect(() =>
      createDispatcher({ channels: [scripted("a", [ok()]).channel], logger, ...options }),
    ).toThrow(message);
  });
});
