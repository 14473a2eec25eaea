import { afterAll, describe, expect, test } from "bun:test";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Notification } from "../../../../core/contract.ts";
import { createLogger } from "../../../../core/log.ts";
import { createDispatcher } from "../../dispatch.ts";
import { ChannelConfigError } from "../../errors.ts";
import { channelErrorOf } from "../testing.ts";
import { createWebhookChannel, webhookSignature } from "./webhook.ts";

const n = {
  schemaVersion: 1,
  eventId: "0123456789abcdef0123456789abcdef",
  objectKey: "reports/positive/q3.pdf",
} as Notification;
const never = { signal: new AbortController().signal, target: {} };

// A real HTTP server on a free port: the channel is exercised over a socket.
let next: () => Response | Promise<Response> = () => new Response(null, { status: 204 });
const requests: { headers: Headers; body: unknown }[] = [];
const server = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  async fetch(req) {
    requests.push({ headers: req.headers, body: await req.json() });
    return next();
  },
});
afterAll(() => server.stop(true));
const url = `http://127.0.0.1:${server.port}/hook`;

/** A receiver that answers `status` headers and one chunk of body, then never ends the body. */
async function stallingBody(status: number) {
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      res.writeHead(status, { "content-type": "text/plain" });
      res.write("partial ");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** `p`, or a rejection naming the guard if it has not settled long after any deadline. */
function withGuard<T>(p: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error("guard: the send never returned")), 15_000);
  });
  return Promise.race([p, guard]).finally(() => clearTimeout(timer));
}

describe("webhook channel", () => {
  test("POSTs the notification as JSON with the event id header", async () => {
    next = () => new Response(null, { status: 204, headers: { "x-request-id": "r-1" } });
    const receipt = await createWebhookChannel({ url }).send(n, never);
    expect(receipt).toEqual({ providerId: "r-1" });
    const last = requests.at(-1);
    expect(last?.body).toEqual(n);
    expect(last?.headers.get("content-type")).toBe("application/json");
    expect(last?.headers.get("x-fanda-event-id")).toBe(n.eventId);
  });

  test.each([
    [500, undefined, "retriable"],
    [503, undefined, "retriable"],
    [429, undefined, "retriable"],
    [408, undefined, "retriable"],
    [400, undefined, "final"],
    [413, undefined, "final"],
    [422, undefined, "final"],
    [401, undefined, "WEBHOOK_URL"],
    [403, undefined, "WEBHOOK_URL"],
    [401, "0123456789abcdef-secret", "WEBHOOK_SECRET"],
    [403, "0123456789abcdef-secret", "WEBHOOK_SECRET"],
    [404, undefined, "WEBHOOK_URL"],
    [410, "0123456789abcdef-secret", "WEBHOOK_URL"],
  ])("status %d (secret %p) is %s", async (status, secret, expected) => {
    next = () => new Response("nope", { status });
    const err = await channelErrorOf(
      createWebhookChannel({ url, ...(secret ? { secret } : {}) }).send(n, never),
    );
    const kind =
      err instanceof ChannelConfigError ? err.setting : err.retriable ? "retriable" : "final";
    expect(kind).toBe(expected);
    expect(err.status).toBe(status);
    expect(err.message).toContain(String(status));
  });

  test("a receiver answering 401 to everything: 50 sends deferred (none failed), the channel down naming WEBHOOK_URL; fixed, they deliver", async () => {
    next = () => new Response("unauthorized", { status: 401 });
    const dispatch = createDispatcher({
      channels: [createWebhookChannel({ url })],
      logger: createLogger({ sink: () => {} }),
      sleep: async () => {},
    });
    const route = { channels: ["webhook"], targets: {} };
    const batch = Array.from({ length: 50 }, (_, i) => ({
      ...n,
      eventId: i.toString(16).padStart(32, "0"),
    }));
    const down = await Promise.all(batch.map((m) => dispatch(m, route, never.signal)));
    expect(down.flat().map((o) => o.status)).toEqual(Array(50).fill("deferred"));
    expect(dispatch.health().webhook).toMatchObject({
      breakerOpen: true,
      misconfigured: { setting: "WEBHOOK_URL" },
    });
    next = () => new Response(null, { status: 204 });
    const up = await Promise.all(batch.map((m) => dispatch(m, route, never.signal)));
    expect(up.flat().map((o) => o.status)).toEqual(Array(50).fill("delivered"));
    expect(dispatch.health().webhook?.misconfigured).toBeUndefined();
  });

  test("reads Retry-After in seconds", async () => {
    next = () => new Response("slow down", { status: 429, headers: { "retry-after": "3" } });
    const err = await channelErrorOf(createWebhookChannel({ url }).send(n, never));
    expect(err.retryAfterMs).toBe(3000);
  });

  test("a timeout is retriable", async () => {
    next = () => new Promise((resolve) => setTimeout(() => resolve(new Response(null)), 2000));
    const err = await channelErrorOf(createWebhookChannel({ url, timeoutMs: 50 }).send(n, never));
    expect(err.retriable).toBe(true);
  });

  test("a 2xx whose body then stalls is delivered at the deadline (accepted; never sent twice)", async () => {
    const stalling = await stallingBody(200);
    try {
      const sending = createWebhookChannel({ url: stalling.url, timeoutMs: 100 }).send(n, never);
      expect(await withGuard(sending)).toEqual({});
    } finally {
      await stalling.stop();
    }
  }, 30_000);

  test("a failure status whose body stalls also ends at the deadline", async () => {
    const stalling = await stallingBody(503);
    try {
      const sending = createWebhookChannel({ url: stalling.url, timeoutMs: 100 }).send(n, never);
      const err = await channelErrorOf(withGuard(sending));
      expect(err.retriable).toBe(true);
    } finally {
      await stalling.stop();
    }
  }, 30_000);

  test("a shutdown ends a send whose body read stalls", async () => {
    const stalling = await stallingBody(503);
    try {
      const shutdown = new AbortController();
      let headersArrived: () => void = () => {};
      const arrived = new Promise<void>((resolve) => {
        headersArrived = resolve;
      });
      // The real fetch, telling when the response (its headers) is in: the abort comes after.
      const observed = (async (...args: Parameters<typeof fetch>) => {
        const response = await fetch(...args);
        headersArrived();
        return response;
      }) as typeof fetch;
      // The channel's own deadline is a minute: only the abort can end this send in time.
      const sending = createWebhookChannel({
        url: stalling.url,
        timeoutMs: 60_000,
        fetch: observed,
      }).send(n, { signal: shutdown.signal, target: {} });
      await arrived;
      // Let the channel take the response and start reading its body before the shutdown.
      await Bun.sleep(20);
      shutdown.abort(new Error("shutdown"));
      const err = await channelErrorOf(withGuard(sending));
      expect(err.retriable).toBe(true);
    } finally {
      await stalling.stop();
    }
  }, 30_000);

  test("a refused connection is retriable", async () => {
    const closed = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response() });
    const deadUrl = `http://127.0.0.1:${closed.port}/`;
    await closed.stop(true);
    const err = await channelErrorOf(createWebhookChannel({ url: deadUrl }).send(n, never));
    expect(err.retriable).toBe(true);
  });

  test.each([
    [{ url: "not a url" }, /url: not a valid URL/],
    [{ url: "ftp://example.com" }, /expected http or https/],
    [{ url, timeoutMs: 0 }, /timeoutMs/],
    [{ url, timeoutMs: 1.5 }, /timeoutMs/],
  ])("refuses bad options %p", (options, message) => {
    expect(() => createWebhookChannel(options)).toThrow(message);
  });
});

describe("webhook signature", () => {
  test("signs the exact body with HMAC-SHA256 over `<t>.<body>` when a secret is set", async () => {
    next = () => new Response(null, { status: 204 });
    const secret = "0123456789abcdef-secret";
    await createWebhookChannel({ url, secret }).send(n, never);
    const last = requests.at(-1);
    const header = last?.headers.get("x-fanda-signature") ?? "";
    const match = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header);
    expect(match).not.toBeNull();
    const t = Number(match?.[1]);
    expect(header).toBe(webhookSignature(secret, JSON.stringify(last?.body), t));
    expect(Math.abs(t - Date.now() / 1000)).toBeLessThan(300);
  });

  test("sends no signature without a secret, and refuses a short secret", async () => {
    next = () => new Response(null, { status: 204 });
    await createWebhookChannel({ url }).send(n, never);
    expect(requests.at(-1)?.headers.get("x-fanda-signature")).toBeNull();
    expect(() => createWebhookChannel({ url, secret: "short" })).toThrow(/WEBHOOK_SECRET/);
  });

  test("the signature is the documented HMAC", () => {
    // Computed independently: printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac 'key-key-key-key-key'
    expect(webhookSignature("key-key-key-key-key", '{"a":1}', 1700000000)).toBe(
      "t=1700000000,v1=697da7e30412f7753fffe391414f555b31433c7439c961bc5471a7e03e96ab20",
    );
  });
});
