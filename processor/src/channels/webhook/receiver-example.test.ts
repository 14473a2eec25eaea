// The receiver example of docs/webhooks.md, run against the real channel: the doc quotes
// docs/examples/webhook-receiver.ts verbatim, and this test imports and runs that file.
import { afterAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Notification } from "../../../../core/contract.ts";
import {
  createReceiver,
  type FandaNotification,
} from "../../../../docs/examples/webhook-receiver.ts";
import { ChannelConfigError } from "../../errors.ts";
import { channelErrorOf } from "../testing.ts";
import { createWebhookChannel } from "./webhook.ts";

const root = join(import.meta.dir, "../../../..");
const examplePath = join(root, "docs/examples/webhook-receiver.ts");
const secret = () => `whsec_${randomBytes(32).toString("base64")}`;
const ctx = { signal: new AbortController().signal, target: {} };
const n: Notification = {
  schemaVersion: 1,
  eventId: "3f1c0a9e5b7d4e2f8a6c1b0d9e8f7a6b",
  fileName: "q3.pdf",
  bucketName: "fanda-uploads",
  objectKey: "reports/positive/q3.pdf",
  uploadTime: "2026-11-27T09:15:30.123Z",
  s3Url: "s3://fanda-uploads/reports/positive/q3.pdf",
  category: "positive",
  size: 482113,
  sequencer: "0055AED6DCD90281E5",
  eventName: "ObjectCreated:Put",
};

/** The example's handler on a real port; `handled` lists what it acted on. */
function serve(secrets: string[], handle?: (n: FandaNotification) => Promise<void>) {
  const handled: FandaNotification[] = [];
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: createReceiver({
      secrets,
      handle: async (got) => {
        await handle?.(got);
        handled.push(got);
      },
    }),
  });
  servers.push(server);
  return { url: `http://127.0.0.1:${server.port}/fanda`, handled };
}
const servers: { stop(force?: boolean): unknown }[] = [];
afterAll(() => {
  for (const s of servers) s.stop(true);
});

describe("docs/webhooks.md receiver example", () => {
  test("docs/webhooks.md quotes docs/examples/webhook-receiver.ts verbatim", () => {
    const doc = readFileSync(join(root, "docs/webhooks.md"), "utf8");
    const example = readFileSync(examplePath, "utf8");
    expect(doc).toContain(`\`\`\`ts\n${example}\`\`\``);
  });

  test("verifies a real send and acts once on a duplicate", async () => {
    const s = secret();
    const receiver = serve([s]);
    const channel = createWebhookChannel({ url: receiver.url, secret: s });
    await channel.send(n, ctx);
    await channel.send(n, ctx); // a duplicate: the same webhook-id
    expect(receiver.handled).toEqual([n]);
  });

  test("during a rotation a receiver with only the new secret verifies", async () => {
    const [old, current] = [secret(), secret()];
    const receiver = serve([current]);
    await createWebhookChannel({ url: receiver.url, secret: `${old} ${current}` }).send(n, ctx);
    expect(receiver.handled).toHaveLength(1);
  });

  test("a wrong signature is 401: Fanda holds the channel (WEBHOOK_SECRET), nothing is handled", async () => {
    const receiver = serve([secret()]);
    const err = await channelErrorOf(
      createWebhookChannel({ url: receiver.url, secret: secret() }).send(n, ctx),
    );
    expect(err).toBeInstanceOf(ChannelConfigError);
    expect((err as ChannelConfigError).setting).toBe("WEBHOOK_SECRET");
    expect(receiver.handled).toEqual([]);
  });

  test("a failed handling is retried by Fanda and then handled", async () => {
    const s = secret();
    let failures = 1;
    const receiver = serve([s], async () => {
      if (failures-- > 0) throw new Error("database down");
    });
    const channel = createWebhookChannel({ url: receiver.url, secret: s });
    const original = console.error;
    console.error = () => {};
    try {
      const err = await channelErrorOf(channel.send(n, ctx));
      expect(err.retriable).toBe(true);
    } finally {
      console.error = original;
    }
    await channel.send(n, ctx);
    expect(receiver.handled).toEqual([n]);
  });

  test("a duplicate arriving while the first is handled is asked to come back (retriable), then is a no-op", async () => {
    const s = secret();
    const { promise: gate, resolve: open } = Promise.withResolvers<void>();
    const { promise: started, resolve: start } = Promise.withResolvers<void>();
    const receiver = serve([s], async () => {
      start();
      await gate;
    });
    const channel = createWebhookChannel({ url: receiver.url, secret: s, timeoutMs: 60_000 });
    const first = channel.send(n, ctx);
    await started;
    const err = await channelErrorOf(channel.send(n, ctx));
    expect(err.retriable).toBe(true);
    expect(err.retryAfterMs).toBe(5000);
    open();
    await first;
    await channel.send(n, ctx);
    expect(receiver.handled).toEqual([n]);
  });

  test("the example runs as a program (bun docs/examples/webhook-receiver.ts)", async () => {
    const s = secret();
    const proc = Bun.spawn(["bun", examplePath], {
      env: { ...process.env, WEBHOOK_SECRET: s, PORT: "0" },
      stdout: "pipe",
      stderr: "inherit",
    });
    try {
      const reader = proc.stdout.getReader();
      let out = "";
      const readUntil = async (pattern: RegExp) => {
        while (!pattern.test(out)) {
          const { value, done } = await reader.read();
          if (done) throw new Error(`the example exited; it printed: ${out}`);
          out += new TextDecoder().decode(value);
        }
        return pattern.exec(out);
      };
      const listening = await readUntil(/listening on (http:\/\/\S+)/);
      const url = new URL("/fanda", listening?.[1]).toString();
      await createWebhookChannel({ url, secret: s }).send(n, ctx);
      await readUntil(
        /positive: ObjectCreated:Put s3:\/\/fanda-uploads\/reports\/positive\/q3\.pdf/,
      );
    } finally {
      proc.kill();
      await proc.exited;
    }
  }, 30_000);
});
