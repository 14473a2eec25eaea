import { afterAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import fc from "fast-check";
import { Webhook, WebhookVerificationError } from "standardwebhooks";
import type { Notification } from "../../../../core/contract.ts";
import { createLogger } from "../../../../core/log.ts";
import { createDispatcher } from "../../dispatch.ts";
import { ChannelConfigError, ConfigError } from "../../errors.ts";
import { channelErrorOf } from "../testing.ts";
import {
  createWebhookChannel,
  isLoopbackHost,
  parseWebhookSecrets,
  webhookSignature,
} from "./webhook.ts";

const n = {
  schemaVersion: 1,
  eventId: "0123456789abcdef0123456789abcdef",
  objectKey: "reports/positive/q3.pdf",
} as Notification;
const never = { signal: new AbortController().signal, target: {} };
/** A fresh Standard Webhooks secret with a `bytes`-byte key. */
const newSecret = (bytes = 32) => `whsec_${randomBytes(bytes).toString("base64")}`;
const secretA = newSecret();

// A real HTTP server on a free port: the channel is exercised over a socket.
let next: () => Response | Promise<Response> = () => new Response(null, { status: 204 });
/** What arrived: the headers, the exact body text (what a signature covers) and its JSON. */
const requests: { headers: Headers; text: string; body: unknown }[] = [];
const server = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  async fetch(req) {
    const text = await req.text();
    requests.push({ headers: req.headers, text, body: JSON.parse(text) });
    return next();
  },
});
/** The last request, for a receiver: its body text and its headers as a plain object. */
function lastDelivery() {
  const last = requests.at(-1);
  if (!last) throw new Error("nothing arrived");
  return { text: last.text, headers: Object.fromEntries(last.headers) };
}
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
  test("POSTs the notification as JSON with the Standard Webhooks id and timestamp", async () => {
    next = () => new Response(null, { status: 204, headers: { "x-request-id": "r-1" } });
    const receipt = await createWebhookChannel({ url }).send(n, never);
    expect(receipt).toEqual({ providerId: "r-1" });
    const last = requests.at(-1);
    expect(last?.body).toEqual(n);
    expect(last?.headers.get("content-type")).toBe("application/json");
    expect(last?.headers.get("webhook-id")).toBe(n.eventId);
    expect(last?.headers.get("webhook-timestamp")).toMatch(/^\d+$/);
    // Unsigned without a secret; the retired headers are gone.
    expect(last?.headers.get("webhook-signature")).toBeNull();
    expect(last?.headers.get("x-fanda-signature")).toBeNull();
    expect(last?.headers.get("x-fanda-event-id")).toBeNull();
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
    [401, secretA, "WEBHOOK_SECRET"],
    [403, secretA, "WEBHOOK_SECRET"],
    [404, undefined, "WEBHOOK_URL"],
    [410, secretA, "WEBHOOK_URL"],
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

  test("one shutdown ends every send in flight on its signal, and a send after it at once", async () => {
    const shutdown = new AbortController();
    let started = 0;
    // A receiver that never answers: only the abort of the request's own signal ends it.
    const hanging = ((_: unknown, init?: RequestInit) => {
      started++;
      return new Promise<Response>((_resolve, reject) => {
        // As fetch does: an aborted signal fails the request at once.
        if (init?.signal?.aborted) reject(init.signal.reason);
        init?.signal?.addEventListener("abort", () => reject(init.signal?.reason), { once: true });
      });
    }) as unknown as typeof fetch;
    const channel = createWebhookChannel({ url, timeoutMs: 60_000, fetch: hanging });
    const ctx = { signal: shutdown.signal, target: {} };
    // One that ended before the shutdown must not be aborted again (nor kept).
    const answered = createWebhookChannel({
      url,
      fetch: (async () => new Response(null, { status: 204 })) as unknown as typeof fetch,
    });
    await answered.send(n, ctx);
    const sends = Array.from({ length: 5 }, () => channelErrorOf(withGuard(channel.send(n, ctx))));
    while (started < 5) await Bun.sleep(1);
    shutdown.abort(new Error("shutdown"));
    for (const err of await Promise.all(sends)) expect(err.retriable).toBe(true);
    const after = await channelErrorOf(withGuard(channel.send(n, ctx)));
    expect(after.retriable).toBe(true);
  });

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
    [{ url: "http://hooks.example.com/x" }, /http:\/\/ is allowed only to a loopback host/],
    [{ url: "http://10.0.0.7/x" }, /WEBHOOK_ALLOW_HTTP=true/],
    [{ url: "http://127.0.0.1.example.com/x" }, /loopback/],
    [{ url: "http://localhost.example.com/x" }, /loopback/],
  ])("refuses bad options %p", (options, message) => {
    expect(() => createWebhookChannel(options)).toThrow(message);
  });

  test.each([
    "https://hooks.example.com/x",
    "http://127.0.0.1:8082/notify",
    "http://127.1.2.3/x",
    "http://localhost:8082/notify",
    "http://LOCALHOST/x",
    "http://[::1]:8082/notify",
  ])("takes %s without allowHttp", (target) => {
    expect(createWebhookChannel({ url: target }).name).toBe("webhook");
  });

  test("allowHttp takes http:// to any host", () => {
    expect(createWebhookChannel({ url: "http://hooks.internal/x", allowHttp: true }).name).toBe(
      "webhook",
    );
  });

  test("loopback is only 127.0.0.0/8, [::1] and localhost", () => {
    expect(["127.0.0.1", "127.255.0.9", "[::1]", "localhost"].map(isLoopbackHost)).toEqual([
      true,
      true,
      true,
      true,
    ]);
    expect(
      [
        "128.0.0.1",
        "[::2]",
        "localhost.evil",
        "127.0.0.1.nip.io",
        "0.0.0.0",
        "[::ffff:7f00:1]",
      ].map(isLoopbackHost),
    ).toEqual([false, false, false, false, false, false]);
  });
});

// The receiver in these tests is the `standardwebhooks` library, written independently of ours.
describe("webhook connections", () => {
  /** A receiver that counts the TCP connections its requests came on. */
  async function countingReceiver() {
    let connections = 0;
    const receiver: Server = createServer((req, res) => {
      req.resume();
      req.on("end", () => res.writeHead(204).end());
    });
    receiver.on("connection", () => connections++);
    await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
    const { port } = receiver.address() as AddressInfo;
    return {
      url: `http://127.0.0.1:${port}/hook`,
      connections: () => connections,
      close: () => new Promise((resolve) => receiver.close(resolve)),
    };
  }
  /** 100 deliveries in four rounds of 25 at once. */
  async function deliverInRounds(channel: ReturnType<typeof createWebhookChannel>) {
    for (let round = 0; round < 4; round++) {
      await Promise.all(
        Array.from({ length: 25 }, (_, i) =>
          channel.send({ ...n, eventId: `${round}-${i}` } as Notification, never),
        ),
      );
    }
  }

  test("reuse their connections: 100 deliveries in rounds of 25 open at most 25", async () => {
    const receiver = await countingReceiver();
    try {
      await deliverInRounds(createWebhookChannel({ url: receiver.url }));
      expect(receiver.connections()).toBeGreaterThan(0);
      expect(receiver.connections()).toBeLessThanOrEqual(25);
    } finally {
      await receiver.close();
    }
  });

  test("the count bites: a client that closes each connection opens one per delivery", async () => {
    const receiver = await countingReceiver();
    try {
      const closing: typeof fetch = Object.assign(
        (input: string | URL | Request, init?: RequestInit) =>
          fetch(input, { ...init, headers: { ...(init?.headers as object), connection: "close" } }),
        { preconnect: fetch.preconnect },
      );
      await deliverInRounds(createWebhookChannel({ url: receiver.url, fetch: closing }));
      expect(receiver.connections()).toBe(100);
    } finally {
      await receiver.close();
    }
  });
});

describe("Standard Webhooks signature, verified by the standardwebhooks library", () => {
  test("a signed delivery verifies, and its id is the event id", async () => {
    next = () => new Response(null, { status: 204 });
    await createWebhookChannel({ url, secret: secretA }).send(n, never);
    const { text, headers } = lastDelivery();
    expect(headers["webhook-id"]).toBe(n.eventId);
    expect(headers["webhook-signature"]).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/);
    expect(new Webhook(secretA).verify(text, headers)).toEqual(n);
  });

  test("rotation: signed with two secrets, a receiver knowing only the old or only the new one verifies", async () => {
    next = () => new Response(null, { status: 204 });
    const [old, current] = [newSecret(), newSecret(48)];
    await createWebhookChannel({ url, secret: `${old} ${current}` }).send(n, never);
    const { text, headers } = lastDelivery();
    expect(headers["webhook-signature"]?.split(" ")).toHaveLength(2);
    expect(new Webhook(old).verify(text, headers)).toEqual(n);
    expect(new Webhook(current).verify(text, headers)).toEqual(n);
    expect(() => new Webhook(newSecret()).verify(text, headers)).toThrow(WebhookVerificationError);
    // Commas separate as well as spaces (a list in a secret manager).
    await createWebhookChannel({ url, secret: `${old},${current}` }).send(n, never);
    expect(lastDelivery().headers["webhook-signature"]).toBe(headers["webhook-signature"]);
  });

  test("a tampered body fails", async () => {
    next = () => new Response(null, { status: 204 });
    await createWebhookChannel({ url, secret: secretA }).send(n, never);
    const { text, headers } = lastDelivery();
    const tampered = text.replace("reports/positive/q3.pdf", "reports/positive/q4.pdf");
    expect(tampered).not.toBe(text);
    expect(() => new Webhook(secretA).verify(tampered, headers)).toThrow(
      "No matching signature found",
    );
    // Re-serialising the parsed body is not the signed text either when it differs by a byte.
    expect(() => new Webhook(secretA).verify(`${text} `, headers)).toThrow(
      WebhookVerificationError,
    );
  });

  test("a stale timestamp fails (the sender's clock injected ten minutes back)", async () => {
    next = () => new Response(null, { status: 204 });
    const tenMinutesAgo = () => Date.now() - 10 * 60_000;
    await createWebhookChannel({ url, secret: secretA, now: tenMinutesAgo }).send(n, never);
    const { text, headers } = lastDelivery();
    expect(() => new Webhook(secretA).verify(text, headers)).toThrow("Message timestamp too old");
    // The timestamp is signed: moving it forward does not make it verify.
    const moved = { ...headers, "webhook-timestamp": String(Math.floor(Date.now() / 1000)) };
    expect(() => new Webhook(secretA).verify(text, moved)).toThrow("No matching signature found");
  });

  test("a wrong id fails: the id is signed", async () => {
    next = () => new Response(null, { status: 204 });
    await createWebhookChannel({ url, secret: secretA }).send(n, never);
    const { text, headers } = lastDelivery();
    const other = { ...headers, "webhook-id": "f".repeat(32) };
    expect(() => new Webhook(secretA).verify(text, other)).toThrow("No matching signature found");
  });

  test("a retry carries the same webhook-id and its own timestamp", async () => {
    let t = 1_800_000_000_000;
    const channel = createWebhookChannel({ url, secret: secretA, now: () => t });
    next = () => new Response("busy", { status: 503 });
    await channelErrorOf(channel.send(n, never));
    const first = lastDelivery().headers;
    t += 7_000;
    next = () => new Response(null, { status: 204 });
    await channel.send(n, never);
    const second = lastDelivery().headers;
    expect(second["webhook-id"]).toBe(first["webhook-id"]);
    expect(Number(second["webhook-timestamp"]) - Number(first["webhook-timestamp"])).toBe(7);
    expect(second["webhook-signature"]).not.toBe(first["webhook-signature"]);
  });

  test("the signature is the documented HMAC", () => {
    // Computed independently, key 24 bytes of 0xaa:
    // printf 'msg_1.1700000000.{"a":1}' | openssl dgst -sha256 -mac HMAC \
    //   -macopt hexkey:aaaa…aa -binary | base64
    const key = Buffer.alloc(24, 0xaa);
    expect(webhookSignature([key], "msg_1", 1700000000, '{"a":1}')).toBe(
      "v1,/t6Q7IUBf9oOUPlTH1875Uh0fLHHqwMkl/S0qJfqZsc=",
    );
    expect(webhookSignature([key, key], "msg_1", 1700000000, '{"a":1}')).toBe(
      "v1,/t6Q7IUBf9oOUPlTH1875Uh0fLHHqwMkl/S0qJfqZsc= v1,/t6Q7IUBf9oOUPlTH1875Uh0fLHHqwMkl/S0qJfqZsc=",
    );
  });

  test("property: any body, id and keys -> the library verifies with each key", () => {
    fc.assert(
      fc.property(
        fc.string({ unit: "binary", minLength: 1 }),
        fc.string({ unit: "binary" }),
        fc.array(fc.uint8Array({ minLength: 24, maxLength: 64 }), { minLength: 1, maxLength: 5 }),
        (id, body, rawKeys) => {
          const secrets = rawKeys.map((k) => `whsec_${Buffer.from(k).toString("base64")}`);
          const parsed = parseWebhookSecrets(secrets.join(" "));
          expect(parsed.problem).toBeUndefined();
          const timestamp = Math.floor(Date.now() / 1000);
          const headers = {
            "webhook-id": id,
            "webhook-timestamp": String(timestamp),
            "webhook-signature": webhookSignature(parsed.keys ?? [], id, timestamp, body),
          };
          for (const secret of secrets) {
            new Webhook(secret).verify(body, headers, { jsonParse: false });
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  test("property: any notification sent over HTTP -> the library verifies the received body", async () => {
    next = () => new Response(null, { status: 204 });
    const channel = createWebhookChannel({ url, secret: secretA });
    await fc.assert(
      fc.asyncProperty(
        fc.stringMatching(/^[0-9a-f]{32}$/),
        fc.string({ unit: "grapheme", minLength: 1, maxLength: 200 }),
        fc.string({ unit: "binary", maxLength: 100 }),
        async (eventId, objectKey, fileName) => {
          const sent = { ...n, eventId, objectKey, fileName };
          await channel.send(sent, never);
          const { text, headers } = lastDelivery();
          expect(headers["webhook-id"]).toBe(eventId);
          expect(new Webhook(secretA).verify(text, headers)).toEqual(
            JSON.parse(JSON.stringify(sent)),
          );
        },
      ),
      { numRuns: 40 },
    );
  });
});

describe("signing secrets", () => {
  test.each([
    [
      "a plain-text secret of the retired scheme",
      "0123456789abcdef-secret",
      /does not start with whsec_/,
    ],
    ["an empty key", "whsec_", /not standard padded base64/],
    ["url-safe base64", `whsec_${"-_".repeat(16)}`, /not standard padded base64/],
    [
      "missing padding",
      `whsec_${randomBytes(25).toString("base64").replace(/=+$/, "")}`,
      /padded base64/,
    ],
    ["a stray character", `whsec_${randomBytes(24).toString("base64")}!`, /padded base64/],
    ["a 16-byte key", newSecret(16), /a 16-byte key; expected 24 to 64 bytes/],
    ["a 23-byte key", newSecret(23), /a 23-byte key/],
    ["a 65-byte key", newSecret(65), /a 65-byte key/],
    ["a bad second secret", `${newSecret()} whsec_nope`, /secret 2 of 2/],
    ["six secrets", Array.from({ length: 6 }, () => newSecret()).join(" "), /at most 5 secrets/],
    ["only separators", " , ", /at least one whsec_ secret/],
  ])("refuses %s, naming WEBHOOK_SECRET and never quoting it", (_what, secret, message) => {
    let error: unknown;
    try {
      createWebhookChannel({ url, secret });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const text = String((error as Error).message);
    expect(text).toMatch(message);
    expect(text).toContain("WEBHOOK_SECRET");
    for (const part of secret.split(/[\s,]+/).filter((p) => p.length > 8)) {
      expect(text).not.toContain(part);
      expect(text).not.toContain(part.slice("whsec_".length));
    }
  });

  test.each([24, 32, 64])("takes a %d-byte key", (bytes) => {
    expect(parseWebhookSecrets(newSecret(bytes)).keys?.[0]).toHaveLength(bytes);
  });

  test("the same secret twice signs once", () => {
    expect(parseWebhookSecrets(`${secretA} ${secretA}`).keys).toHaveLength(1);
  });

  test("property: any string is keys of 24 to 64 bytes or a problem, never a throw", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: "binary" }),
          fc.string().map((s) => `whsec_${s}`),
          fc.uint8Array({ maxLength: 80 }).map((k) => `whsec_${Buffer.from(k).toString("base64")}`),
        ),
        (value) => {
          const parsed = parseWebhookSecrets(value);
          if (parsed.problem !== undefined) return;
          for (const key of parsed.keys) {
            expect(key.length).toBeGreaterThanOrEqual(24);
            expect(key.length).toBeLessThanOrEqual(64);
          }
        },
      ),
    );
  });
});
