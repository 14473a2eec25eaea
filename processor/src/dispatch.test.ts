import { describe, expect, test } from "bun:test";
import type { Notification } from "../../core/contract.ts";
import { createLogger } from "../../core/log.ts";
import type { Channel, SendContext } from "./channels/channel.ts";
import { createDispatcher } from "./dispatch.ts";
import { ChannelConfigError, ChannelError, ChannelUnavailableError } from "./errors.ts";

const logger = createLogger({ sink: () => {} });
const n = { eventId: "0123456789abcdef0123456789abcdef" } as Notification;
const never = new AbortController().signal;
const noWait = async () => {};

/** A channel that answers from a script: each call takes the next step (the last repeats). */
function scripted(name: string, steps: ((ctx: SendContext) => Promise<{ providerId?: string }>)[]) {
  const calls: SendContext[] = [];
  const channel: Channel = {
    name,
    send: async (_n, ctx) => {
      calls.push(ctx);
      const step = steps[Math.min(calls.length - 1, steps.length - 1)];
      if (!step) throw new Error("no step");
      return step(ctx);
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
const route = (...channels: string[]) => ({ channels, targets: {} });

describe("createDispatcher", () => {
  test("delivers to every routed channel in parallel and reports each outcome", async () => {
    const a = scripted("a", [ok("id-1")]);
    const b = scripted("b", [ok()]);
    const c = scripted("c", [ok()]);
    const dispatch = createDispatcher({ channels: [a.channel, b.channel, c.channel], logger });
    const outcomes = await dispatch(n, route("a", "b"), never);
    expect(outcomes.map((o) => [o.channel, o.status, o.attempts])).toEqual([
      ["a", "delivered", 1],
      ["b", "delivered", 1],
    ]);
    expect(outcomes[0]).toMatchObject({ providerId: "id-1" });
    expect(c.calls).toHaveLength(0);
  });

  test("hands the route's target for the channel to the channel", async () => {
    const a = scripted("a", [ok()]);
    const dispatch = createDispatcher({ channels: [a.channel], logger });
    await dispatch(n, { channels: ["a"], targets: { a: { channel: "#wins" } } }, never);
    expect(a.calls[0]?.target).toEqual({ channel: "#wins" });
  });

  test("retries retriable failures with growing, jittered backoff", async () => {
    const waits: number[] = [];
    const retried: string[] = [];
    const a = scripted("a", [fail(true), fail(true), fail(true), ok()]);
    const dispatch = createDispatcher({
      channels: [a.channel],
      logger,
      retryBaseMs: 100,
      retryMaxMs: 250,
      random: () => 0.999,
      sleep: async (ms) => void waits.push(ms),
      onRetry: (channel) => retried.push(channel),
    });
    const [outcome] = await dispatch(n, route("a"), never);
    expect(outcome).toMatchObject({ status: "delivered", attempts: 4 });
    expect(waits).toEqual([99, 199, 249]);
    expect(retried).toEqual(["a", "a", "a"]);
  });

  /** A dispatcher over `a` whose retries wait at most 1 s, recorded instead of slept. */
  const cappedAtOneSecond = (a: ReturnType<typeof scripted>) => {
    const waits: number[] = [];
    const dispatch = createDispatcher({
      channels: [a.channel],
      logger,
      retryBaseMs: 10,
      retryMaxMs: 1000,
      sleep: async (ms) => void waits.push(ms),
    });
    return { dispatch, waits };
  };

  test("honours the provider's Retry-After within the cap", async () => {
    const a = scripted("a", [fail(true, { retryAfterMs: 800 }), ok()]);
    const { dispatch, waits } = cappedAtOneSecond(a);
    await dispatch(n, route("a"), never);
    expect(waits).toEqual([800]);
  });

  test("a Retry-After longer than the cap defers at once: not retried in place, not dead-lettered", async () => {
    const a = scripted("a", [fail(true, { retryAfterMs: 3_600_000 }), ok()]);
    const { dispatch, waits } = cappedAtOneSecond(a);
    const [outcome] = await dispatch(n, route("a"), never);
    expect(outcome).toMatchObject({ status: "deferred", attempts: 1 });
    expect(waits).toEqual([]);
    expect(a.calls).toHaveLength(1);
    expect(dispatch.health().a?.consecutiveFailures).toBe(1);
    expect((await dispatch(n, route("a"), never))[0]).toMatchObject({ status: "delivered" });
    expect(dispatch.health().a?.consecutiveFailures).toBe(0);
  });

  test("a receiver that asks every message for a long wait opens the breaker: it shows as down", async () => {
    const a = scripted("a", [fail(true, { retryAfterMs: 3_600_000 })]);
    const dispatch = createDispatcher({
      channels: [a.channel],
      logger,
      retryMaxMs: 1000,
      retryBaseMs: 10,
      breakerThreshold: 3,
      sleep: noWait,
    });
    for (let i = 0; i < 3; i++) await dispatch(n, route("a"), never);
    expect(dispatch.health().a).toMatchObject({ breakerOpen: true, consecutiveFailures: 3 });
  });

  test("does not retry a final failure", async () => {
    const a = scripted("a", [fail(false), ok()]);
    const dispatch = createDispatcher({ channels: [a.channel], logger, sleep: noWait });
    const [outcome] = await dispatch(n, route("a"), never);
    expect(outcome).toMatchObject({ status: "failed", attempts: 1 });
    expect(a.calls).toHaveLength(1);
  });

  test("fails after maxAttempts with the last error while the channel otherwise works", async () => {
    const a = scripted("a", [fail(true)]);
    const dispatch = createDispatcher({
      channels: [a.channel],
      logger,
      maxAttempts: 3,
      sleep: noWait,
    });
    const [outcome] = await dispatch(n, route("a"), never);
    expect(outcome).toMatchObject({ status: "failed", attempts: 3 });
    expect(outcome?.status === "failed" && outcome.error.message).toContain("503");
  });

  test("defers instead of failing once the channel fails for every message, and recovers", async () => {
    let down = true;
    const a = scripted("a", [async () => (down ? fail(true)() : {})]);
    const dispatch = createDispatcher({
      channels: [a.channel],
      logger,
      maxAttempts: 2,
      breakerThreshold: 4,
      sleep: noWait,
    });
    expect((await dispatch(n, route("a"), never))[0]?.status).toBe("failed");
    expect((await dispatch(n, route("a"), never))[0]?.status).toBe("deferred");
    expect(dispatch.health().a).toMatchObject({ breakerOpen: true, consecutiveFailures: 4 });
    expect((await dispatch(n, route("a"), never))[0]?.status).toBe("deferred");
    down = false;
    expect((await dispatch(n, route("a"), never))[0]?.status).toBe("delivered");
    expect(dispatch.health().a).toMatchObject({
      breakerOpen: false,
      consecutiveFailures: 0,
      lastOutcome: "delivered",
    });
  });

  test("one failed request carrying many notifications (a digest) counts as one failure", async () => {
    // Every send of the round is rejected with the same error object, as a digest's are.
    let round: ChannelError | undefined;
    const shared: Channel = {
      name: "a",
      send: async () => {
        round ??= new ChannelError("a", "503", { retriable: true });
        const err = round;
        await Promise.resolve();
        round = undefined;
        throw err;
      },
      close: async () => {},
    };
    const dispatch = createDispatcher({
      channels: [shared],
      logger,
      maxAttempts: 1,
      breakerThreshold: 3,
      sleep: noWait,
    });
    const outcomes = await Promise.all(
      Array.from({ length: 10 }, () => dispatch(n, route("a"), never)),
    );
    expect(outcomes.flat().map((o) => o.status)).toEqual(Array(10).fill("failed"));
    expect(dispatch.health().a).toMatchObject({ breakerOpen: false, consecutiveFailures: 1 });
  });

  test("treats a programming error in a channel as final", async () => {
    const a = scripted("a", [
      async () => {
        throw new TypeError("cannot read properties of undefined");
      },
    ]);
    const dispatch = createDispatcher({ channels: [a.channel], logger, sleep: noWait });
    expect((await dispatch(n, route("a"), never))[0]).toMatchObject({
      status: "failed",
      attempts: 1,
    });
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
    const outcomes = await dispatch(n, route("a", "b"), never);
    expect(outcomes.map((o) => o.status)).toEqual(["failed", "delivered"]);
  });

  test("an interrupted send is deferred, not failed", async () => {
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
    expect((await dispatch(n, route("a"), controller.signal))[0]).toMatchObject({
      status: "deferred",
      attempts: 1,
    });
  });

  test("a channel unavailable for longer than a retry may wait is deferred at once: no sleep, no dead letter", async () => {
    const waits: number[] = [];
    const a = scripted("a", [
      async () => {
        throw new ChannelUnavailableError("a", "rate limited for an hour", {
          status: 429,
          retryAfterMs: 3_600_000,
        });
      },
    ]);
    const dispatch = createDispatcher({
      channels: [a.channel],
      logger,
      sleep: async (ms) => void waits.push(ms),
    });
    expect((await dispatch(n, route("a"), never))[0]).toMatchObject({
      status: "deferred",
      attempts: 1,
    });
    expect(waits).toEqual([]);
    expect(a.calls).toHaveLength(1);
  });

  test("a configuration-class failure marks the channel down at once and defers; a delivery clears it", async () => {
    let revoked = true;
    const a = scripted("a", [
      async () => {
        if (revoked) throw new ChannelConfigError("a", "SLACK_BOT_TOKEN", "token_revoked");
        return {};
      },
    ]);
    const b = scripted("b", [ok()]);
    const flagged: [string, string, boolean][] = [];
    const waits: number[] = [];
    const dispatch = createDispatcher({
      channels: [a.channel, b.channel],
      logger,
      breakerThreshold: 10,
      sleep: async (ms) => void waits.push(ms),
      onMisconfigured: (channel, setting, on) => flagged.push([channel, setting, on]),
    });
    const outcomes = await Promise.all(
      Array.from({ length: 5 }, () => dispatch(n, route("a", "b"), never)),
    );
    expect(outcomes.map((o) => o.map((x) => x.status))).toEqual(
      Array(5).fill(["deferred", "delivered"]),
    );
    expect(a.calls).toHaveLength(5);
    expect(waits).toEqual([]);
    expect(dispatch.health().a).toMatchObject({
      breakerOpen: true,
      misconfigured: { setting: "SLACK_BOT_TOKEN" },
    });
    expect(dispatch.health().a?.misconfigured?.error).toContain("token_revoked");
    expect(dispatch.health().b?.breakerOpen).toBe(false);
    expect(flagged).toEqual([["a", "SLACK_BOT_TOKEN", true]]);
    revoked = false;
    expect((await dispatch(n, route("a"), never))[0]?.status).toBe("delivered");
    expect(dispatch.health().a).toMatchObject({ breakerOpen: false, consecutiveFailures: 0 });
    expect(dispatch.health().a?.misconfigured).toBeUndefined();
    expect(flagged).toEqual([
      ["a", "SLACK_BOT_TOKEN", true],
      ["a", "SLACK_BOT_TOKEN", false],
    ]);
  });

  test("a bad routing target stays flagged while other targets deliver; a delivery to it clears it", async () => {
    let missing = true;
    const a = scripted("a", [
      async (ctx) => {
        if (missing && ctx.target.channel === "#gone")
          throw new ChannelConfigError("a", "routing targets.slack.channel", "channel_not_found");
        return {};
      },
    ]);
    const flagged: [string, string, boolean][] = [];
    const dispatch = createDispatcher({
      channels: [a.channel],
      logger,
      sleep: async () => {},
      onMisconfigured: (channel, setting, on) => flagged.push([channel, setting, on]),
    });
    const to = (channel: string) => ({ channels: ["a"], targets: { a: { channel } } });
    expect((await dispatch(n, to("#gone"), never))[0]?.status).toBe("deferred");
    for (let i = 0; i < 3; i++)
      expect((await dispatch(n, to("#uploads"), never))[0]?.status).toBe("delivered");
    expect(dispatch.health().a?.misconfigured?.setting).toBe("routing targets.slack.channel");
    expect(flagged).toEqual([["a", "routing targets.slack.channel", true]]);
    missing = false;
    expect((await dispatch(n, to("#gone"), never))[0]?.status).toBe("delivered");
    expect(dispatch.health().a?.misconfigured).toBeUndefined();
    expect(flagged.at(-1)).toEqual(["a", "routing targets.slack.channel", false]);
  });

  test("a route naming a channel that is not enabled fails that channel only", async () => {
    const a = scripted("a", [ok()]);
    const dispatch = createDispatcher({ channels: [a.channel], logger });
    const outcomes = await dispatch(n, route("a", "ghost"), never);
    expect(outcomes.map((o) => o.status)).toEqual(["delivered", "failed"]);
  });

  test.each([
    [{ channels: [] }, /at least one channel/],
    [{ maxAttempts: 0 }, /maxAttempts/],
    [{ retryBaseMs: 0 }, /retryBaseMs/],
    [{ retryBaseMs: 100, retryMaxMs: 50 }, /retryMaxMs/],
    [{ breakerThreshold: 0 }, /breakerThreshold/],
  ])("refuses bad options %p", (options, message) => {
    expect(() =>
      createDispatcher({ channels: [scripted("a", [ok()]).channel], logger, ...options }),
    ).toThrow(message);
  });
});
