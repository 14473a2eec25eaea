import { afterAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import type { Notification } from "../core/contract.ts";
import { createWebhookChannel } from "../processor/src/channels/webhook/webhook.ts";
import { ChannelConfigError } from "../processor/src/errors.ts";
import { startSink } from "./sink.ts";

const secret = () => `whsec_${randomBytes(32).toString("base64")}`;
const n = { schemaVersion: 1, eventId: "ab".repeat(16), objectKey: "a.pdf" } as Notification;
const ctx = { signal: new AbortController().signal, target: {} };

describe("the webhook sink given secrets verifies like a Standard Webhooks receiver", () => {
  const [old, current] = [secret(), secret()];
  const sink = startSink({ secret: `${old} ${current}` });
  afterAll(() => sink.stop());

  test("a delivery signed with either secret is kept, marked verified", async () => {
    await createWebhookChannel({ url: sink.url, secret: current }).send(n, ctx);
    await createWebhookChannel({ url: sink.url, secret: old }).send(n, ctx);
    expect(sink.received.map((r) => [r.verified, r.headers["webhook-id"]])).toEqual([
      [true, n.eventId],
      [true, n.eventId],
    ]);
  });

  test("a wrong secret or no signature is answered 401 and not kept", async () => {
    const before = sink.received.length;
    const wrong = createWebhookChannel({ url: sink.url, secret: secret() }).send(n, ctx);
    expect(await wrong.catch((e) => e)).toBeInstanceOf(ChannelConfigError);
    const unsigned = createWebhookChannel({ url: sink.url }).send(n, ctx);
    expect(await unsigned.catch((e) => e)).toBeInstanceOf(ChannelConfigError);
    expect(sink.received.length).toBe(before);
    expect(sink.rejected.map((r) => r.reason)).toEqual([
      "No matching signature found",
      "Missing required headers",
    ]);
  });
});
