import { describe, expect, test } from "bun:test";
import type { KafkaMessage } from "kafkajs";
import { encodeNotification } from "../../../core/contract.ts";
import { createLogger } from "../../../core/log.ts";
import { aNotification } from "../../../test/support/notifications.ts";
import type { DeliveryRecord } from "../delivery-log/index.ts";
import type { ChannelOutcome } from "../dispatch.ts";
import type { DeadLetter } from "../dlq.ts";
import { createMetrics } from "../metrics.ts";
import type { Router } from "../routing.ts";
import { createMessageHandler, type Item } from "./handler.ts";

const notification = aNotification({ eventId: "0123456789abcdef0123456789abcdef" });
const message = (value: Buffer | string): KafkaMessage =>
  ({ offset: "7", key: Buffer.from("k"), value: Buffer.from(value), headers: {} }) as KafkaMessage;
const at = new Date("2026-12-01T10:00:01.000Z");
const outcome = (channel: string, status: ChannelOutcome["status"]): ChannelOutcome =>
  status === "delivered"
    ? {
        channel,
        status,
        attempts: 1,
        durationMs: 5,
        firstAttemptAt: at,
        providerId: `${channel}-id`,
      }
    : {
        channel,
        status,
        attempts: 3,
        durationMs: 5,
        firstAttemptAt: at,
        error: new Error(`${channel} ${status}`),
      };

/** A handler over fakes: a scripted dispatcher, a DLQ that may refuse, a recording settler. */
function fixture(
  script: Record<string, ChannelOutcome["status"]>,
  opts: {
    dlqDown?: boolean;
    storeHealthy?: boolean;
    aborted?: boolean;
    /** Replaces the dispatcher (e.g. one that throws). */
    dispatch?: () => Promise<ChannelOutcome[]>;
    /** Replaces the router (e.g. one that throws). */
    route?: (category: string) => unknown;
    settleThrows?: boolean;
  } = {},
) {
  const letters: DeadLetter[] = [];
  const settled: [string, string[]][] = [];
  const sent: string[][] = [];
  const abort = new AbortController();
  if (opts.aborted) abort.abort();
  const handler = createMessageHandler({
    route: (opts.route ?? (() => ({ channels: Object.keys(script), targets: {} }))) as Router,
    dispatch: async (_n, route) => {
      sent.push([...route.channels]);
      if (opts.dispatch) return opts.dispatch();
      return route.channels.map((c) => outcome(c, script[c] ?? "delivered"));
    },
    store: { healthy: () => opts.storeHealthy ?? true },
    dlq: {
      send: async (ls) => {
        if (opts.dlqDown) throw new Error("dlq down");
        letters.push(...ls);
      },
    },
    settle: async (op, keys) => {
      settled.push([op, keys.map((k) => k.channel)]);
      if (opts.settleThrows && op === "complete") throw new Error("settle broke");
    },
    metrics: createMetrics({ defaultMetrics: false }),
    logger: createLogger({ sink: () => {} }),
    failOpen: false,
    abortSignal: abort.signal,
  });
  return { handler, letters, settled, sent };
}

async function decoded(f: ReturnType<typeof fixture>, claims: Item["claims"]) {
  const item: Item = { message: message(encodeNotification(notification)), final: false };
  await f.handler.decode("t", 0, item);
  item.claims = claims;
  return item;
}

describe("message handler", () => {
  test("delivered on every claimed channel: final, done marks, one record each with the provider id", async () => {
    const f = fixture({ slack: "delivered", email: "delivered" });
    const item = await decoded(f, ["claimed", "claimed"]);
    const records: DeliveryRecord[] = [];
    await f.handler.handle("t", 0, item, records);
    expect(item).toMatchObject({ final: true });
    expect(item.reason).toBeUndefined();
    expect(f.settled).toEqual([
      ["complete", ["slack", "email"]],
      ["release", []],
    ]);
    expect(records.map((r) => [r.channel, r.status, r.providerId])).toEqual([
      ["slack", "delivered", "slack-id"],
      ["email", "delivered", "email-id"],
    ]);
  });

  test("a channel already done is skipped and recorded with 0 attempts; only the rest is sent", async () => {
    const f = fixture({ slack: "delivered", email: "delivered" });
    const item = await decoded(f, ["done", "claimed"]);
    const records: DeliveryRecord[] = [];
    await f.handler.handle("t", 0, item, records);
    expect(f.sent).toEqual([["email"]]);
    expect(records.map((r) => [r.channel, r.attempts])).toEqual([
      ["slack", 0],
      ["email", 1],
    ]);
    expect(item.final).toBe(true);
  });

  test("a failed channel: released, recorded, dead-lettered with the channels and attempts; final", async () => {
    const f = fixture({ slack: "delivered", email: "failed" });
    const item = await decoded(f, ["claimed", "claimed"]);
    await f.handler.handle("t", 0, item, []);
    expect(f.settled).toContainEqual(["release", ["email"]]);
    expect(f.letters).toHaveLength(1);
    expect(f.letters[0]).toMatchObject({
      reason: "delivery-failed",
      failedChannels: ["email"],
      attempts: [3],
      error: "email failed",
    });
    expect(item.final).toBe(true);
  });

  test("a failure the DLQ cannot take is not final (dlq-unavailable)", async () => {
    const f = fixture({ slack: "failed" }, { dlqDown: true });
    const item = await decoded(f, ["claimed"]);
    await f.handler.handle("t", 0, item, []);
    expect(item).toMatchObject({ final: false, reason: "dlq-unavailable" });
  });

  test("a deferred channel (down) is not final, and neither is a claim held elsewhere", async () => {
    const down = fixture({ slack: "deferred" });
    const a = await decoded(down, ["claimed"]);
    await down.handler.handle("t", 0, a, []);
    expect(a).toMatchObject({ final: false, reason: "channel-down" });
    expect(down.settled).toContainEqual(["release", ["slack"]]);
    const busy = fixture({ slack: "delivered" });
    const b = await decoded(busy, ["busy"]);
    await busy.handler.handle("t", 0, b, []);
    expect(b).toMatchObject({ final: false, reason: "claimed-elsewhere" });
    expect(busy.sent).toEqual([]);
  });

  test("deferred because of a shutdown says so", async () => {
    const f = fixture({ slack: "deferred" }, { aborted: true });
    const item = await decoded(f, ["claimed"]);
    await f.handler.handle("t", 0, item, []);
    expect(item.reason).toBe("shutdown");
  });

  test("the store went away after the claim: nothing is sent (store-unavailable)", async () => {
    const f = fixture({ slack: "delivered" }, { storeHealthy: false });
    const item = await decoded(f, ["claimed"]);
    await f.handler.handle("t", 0, item, []);
    expect(item).toMatchObject({ final: false, reason: "store-unavailable" });
    expect(f.sent).toEqual([]);
  });

  test("decode: an invalid message and an unknown schema version are dead-lettered, final", async () => {
    const f = fixture({ slack: "delivered" });
    const bad: Item = { message: message("not json"), final: false };
    await f.handler.decode("t", 0, bad);
    const newer: Item = {
      message: message(JSON.stringify({ ...notification, schemaVersion: 99 })),
      final: false,
    };
    await f.handler.decode("t", 0, newer);
    expect(f.letters.map((l) => l.reason)).toEqual(["invalid-message", "unknown-schema-version"]);
    expect([bad.final, newer.final]).toEqual([true, true]);
    const down = fixture({ slack: "delivered" }, { dlqDown: true });
    const stuck: Item = { message: message("{}"), final: false };
    await down.handler.decode("t", 0, stuck);
    expect(stuck).toMatchObject({ final: false, reason: "dlq-unavailable" });
  });

  describe("any exception handling one message is that message's outcome (processing-error), never a throw", () => {
    test("a dispatcher that throws: dead-lettered with the error and its class; claims released; final", async () => {
      const f = fixture(
        { slack: "delivered" },
        {
          dispatch: async () => {
            throw new RangeError("dispatcher exploded");
          },
        },
      );
      const item = await decoded(f, ["claimed"]);
      await f.handler.handle("t", 0, item, []);
      expect(item).toMatchObject({ final: true });
      expect(f.letters).toHaveLength(1);
      expect(f.letters[0]).toMatchObject({
        reason: "processing-error",
        error: "dispatcher exploded",
        errorClass: "RangeError",
      });
      expect(f.settled).toContainEqual(["release", ["slack"]]);
    });

    test("a router that throws, or returns something that is not a route: dead-lettered at decode", async () => {
      const throwing = fixture(
        {},
        {
          route: () => {
            throw new TypeError("no route");
          },
        },
      );
      const a: Item = { message: message(encodeNotification(notification)), final: false };
      await throwing.handler.decode("t", 0, a);
      expect(a).toMatchObject({ final: true });
      expect(a.route).toBeUndefined();
      expect(throwing.letters[0]).toMatchObject({ reason: "processing-error", error: "no route" });
      const inherited = fixture({}, { route: () => Object });
      const b: Item = { message: message(encodeNotification(notification)), final: false };
      await inherited.handler.decode("t", 0, b);
      expect(b).toMatchObject({ final: true });
      expect(inherited.letters[0]?.reason).toBe("processing-error");
    });

    test("claims that do not match the route (bookkeeping) are a processing error, not a silent success", async () => {
      const f = fixture({ slack: "delivered", email: "delivered" });
      const item = await decoded(f, ["claimed"]);
      await f.handler.handle("t", 0, item, []);
      expect(f.sent).toEqual([]);
      expect(f.letters[0]?.reason).toBe("processing-error");
      expect(item.final).toBe(true);
    });

    test("a dispatcher that leaves a sent channel without an outcome is a processing error", async () => {
      const f = fixture({ slack: "delivered", email: "delivered" }, { dispatch: async () => [] });
      const item = await decoded(f, ["claimed", "claimed"]);
      await f.handler.handle("t", 0, item, []);
      expect(f.letters[0]?.reason).toBe("processing-error");
    });

    test("settling that throws after a delivery: the delivery's record is kept, the message dead-lettered", async () => {
      const f = fixture({ slack: "delivered" }, { settleThrows: true });
      const item = await decoded(f, ["claimed"]);
      const records: DeliveryRecord[] = [];
      await f.handler.handle("t", 0, item, records);
      expect(records.map((r) => [r.channel, r.status])).toEqual([["slack", "delivered"]]);
      expect(f.letters[0]).toMatchObject({ reason: "processing-error", error: "settle broke" });
      expect(item.final).toBe(true);
    });

    test("an error the DLQ cannot take is not final (dlq-unavailable): the partition pauses", async () => {
      const f = fixture(
        { slack: "delivered" },
        {
          dlqDown: true,
          dispatch: async () => {
            throw new Error("boom");
          },
        },
      );
      const item = await decoded(f, ["claimed"]);
      await f.handler.handle("t", 0, item, []);
      expect(item).toMatchObject({ final: false, reason: "dlq-unavailable" });
    });

    test("a thrown non-Error (even one that cannot be printed) still becomes an outcome", async () => {
      const unprintable = {
        toString() {
          throw new Error("no");
        },
      };
      const f = fixture(
        { slack: "delivered" },
        {
          dispatch: async () => {
            throw unprintable;
          },
        },
      );
      const item = await decoded(f, ["claimed"]);
      await f.handler.handle("t", 0, item, []);
      expect(f.letters[0]?.reason).toBe("processing-error");
      expect(item.final).toBe(true);
    });
  });
});
