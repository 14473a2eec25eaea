/** The Slack channel against scripts/slack-server.ts, over real HTTP on a free port. */
import { afterEach, describe, expect, test } from "bun:test";
import type { Notification } from "../../../../core/contract.ts";
import { createLogger } from "../../../../core/log.ts";
import { extractTraceContext, runInContext, startTracing } from "../../../../core/tracing.ts";
import { type SlackServer, startSlackServer } from "../../../../scripts/slack-server.ts";
import { aNotification } from "../../../../test/support/notifications.ts";
import { createDispatcher } from "../../dispatch.ts";
import { ChannelConfigError, ChannelError } from "../../errors.ts";
import { localRateLimiter } from "../../rate-limit.ts";
import { channelErrorOf } from "../testing.ts";
import { loadSlackTemplates, type SlackTemplates } from "./render.ts";
import { createSlackChannel } from "./slack.ts";

const templates = loadSlackTemplates();

/** `p`, or a rejection naming the guard if it has not settled long after any deadline. */
function withGuard<T>(p: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error("guard: the send never returned")), 15_000);
  });
  return Promise.race([p, guard]).finally(() => clearTimeout(timer));
}
const token = "xoxb-test-token";
const never = new AbortController().signal;
const servers: SlackServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.stop()));
});

function server(options: Parameters<typeof startSlackServer>[0] = {}) {
  const s = startSlackServer({ token, ...options });
  servers.push(s);
  return s;
}

const notification = (over: Partial<Notification> = {}): Notification =>
  aNotification({ size: 1024, ...over });

/**
 * A channel that allows more than Slack's test server does (so the server has to say 429),
 * behind a dispatcher patient enough to wait the throttling out.
 */
function eagerChannel(s: SlackServer, digest: boolean) {
  const slack = createSlackChannel({
    token,
    templates,
    apiUrl: s.apiUrl,
    ratePerSecond: 100,
    burst: 10,
    digest,
  });
  const dispatch = createDispatcher({
    channels: [slack],
    logger: createLogger({ sink: () => {} }),
    maxAttempts: 20,
    retryBaseMs: 50,
    retryMaxMs: 1000,
  });
  return (n: Notification) =>
    dispatch(n, { channels: ["slack"], targets: { slack: { channel: "#hot" } } }, never);
}

describe("slack channel", () => {
  test("posts the category's blocks and fallback text to the routed channel; ts is the receipt", async () => {
    const s = server();
    const slack = createSlackChannel({
      token,
      templates,
      apiUrl: s.apiUrl,
      defaultChannel: "#uploads",
    });
    await slack.connect?.();
    const receipt = await slack.send(notification(), {
      signal: never,
      target: { channel: "#wins" },
    });
    expect(s.messages).toHaveLength(1);
    const [m] = s.messages;
    expect(m?.channel).toBe("#wins");
    expect(m?.text).toContain("Positive report uploaded: q3.pdf");
    expect(m?.blocks?.[0]).toEqual({
      type: "header",
      text: {
        type: "plain_text",
        text: ":white_check_mark: Positive report uploaded",
        emoji: true,
      },
    });
    expect(receipt.providerId).toBe(`#wins/${m?.ts}`);
    expect(m?.metadata).toEqual({
      event_type: "fanda_notifications",
      event_payload: { count: 1, event_ids: expect.stringMatching(/^[0-9a-f]{32}$/) },
    });
  });

  test("uses the default channel when the route names none; without one the channel is misconfigured", async () => {
    const s = server();
    const withDefault = createSlackChannel({
      token,
      templates,
      apiUrl: s.apiUrl,
      defaultChannel: "#uploads",
    });
    await withDefault.send(notification(), { signal: never, target: {} });
    expect(s.messages[0]?.channel).toBe("#uploads");
    const without = createSlackChannel({ token, templates, apiUrl: s.apiUrl });
    const err = await channelErrorOf(without.send(notification(), { signal: never, target: {} }));
    expect(err).toBeInstanceOf(ChannelConfigError);
    expect((err as ChannelConfigError).setting).toBe("SLACK_DEFAULT_CHANNEL");
    expect(err.message).toContain("no Slack channel for category positive");
  });

  test.each([
    [{ error: "channel_not_found" }, {}, "SLACK_DEFAULT_CHANNEL"],
    [{ error: "not_in_channel" }, { channel: "#wins" }, "routing targets.slack.channel"],
    [{ error: "is_archived" }, {}, "SLACK_DEFAULT_CHANNEL"],
    [{ error: "invalid_auth" }, {}, "SLACK_BOT_TOKEN"],
    [{ error: "token_revoked" }, {}, "SLACK_BOT_TOKEN"],
    [{ error: "account_inactive" }, {}, "SLACK_BOT_TOKEN"],
    [{ error: "missing_scope" }, {}, "SLACK_BOT_TOKEN"],
    [{ error: "msg_too_long" }, {}, "final"],
    [{ error: "invalid_blocks" }, {}, "final"],
    [{ error: "service_unavailable" }, {}, "retriable"],
    [{ error: "internal_error" }, {}, "retriable"],
    [{ status: 500 }, {}, "retriable"],
    [{ status: 503 }, {}, "retriable"],
    [{ status: 400 }, {}, "final"],
  ])("%p (target %p) is %s", async (failure, target, expected) => {
    const s = server();
    s.failNext(failure, 1);
    const slack = createSlackChannel({ token, templates, apiUrl: s.apiUrl, defaultChannel: "#x" });
    const err = await channelErrorOf(slack.send(notification(), { signal: never, target }));
    const kind =
      err instanceof ChannelConfigError ? err.setting : err.retriable ? "retriable" : "final";
    expect(kind).toBe(expected);
  });

  test("a wrong token fails at connect, naming SLACK_BOT_TOKEN", async () => {
    const s = server();
    const slack = createSlackChannel({ token: "xoxb-wrong", templates, apiUrl: s.apiUrl });
    const err = await channelErrorOf(slack.connect?.() ?? Promise.resolve());
    expect(err).toBeInstanceOf(ChannelConfigError);
    expect((err as ChannelConfigError).setting).toBe("SLACK_BOT_TOKEN");
    expect(err.message).toContain("invalid_auth");
  });

  test("a token revoked while running: 50 sends deferred (none failed), the channel down naming SLACK_BOT_TOKEN; granted again, they deliver", async () => {
    const s = server({ ratePerSecond: 1000, burst: 1000 });
    const slack = createSlackChannel({
      token,
      templates,
      apiUrl: s.apiUrl,
      ratePerSecond: 1000,
      burst: 1000,
    });
    const dispatch = createDispatcher({
      channels: [slack],
      logger: createLogger({ sink: () => {} }),
      sleep: async () => {},
    });
    const route = { channels: ["slack"], targets: { slack: { channel: "#uploads" } } };
    const batch = Array.from({ length: 50 }, () => notification());
    s.setToken("xoxb-granted-to-someone-else");
    const down = await Promise.all(batch.map((m) => dispatch(m, route, never)));
    expect(down.flat().map((o) => o.status)).toEqual(Array(50).fill("deferred"));
    expect(dispatch.health().slack).toMatchObject({
      breakerOpen: true,
      misconfigured: { setting: "SLACK_BOT_TOKEN" },
    });
    s.setToken(token);
    const up = await Promise.all(batch.map((m) => dispatch(m, route, never)));
    expect(up.flat().map((o) => o.status)).toEqual(Array(50).fill("delivered"));
    expect(new Set(s.carriedEventIds())).toEqual(new Set(batch.map((m) => m.eventId)));
    expect(dispatch.health().slack?.misconfigured).toBeUndefined();
  });

  test("each Slack channel's limit comes from the injected factory as slack:<channel>; a 429 blocks it there", async () => {
    const s = server({ ratePerSecond: 1, burst: 1, retryAfterSeconds: 2 });
    const made: string[] = [];
    const blocked: [string, number][] = [];
    const slack = createSlackChannel({
      token,
      templates,
      apiUrl: s.apiUrl,
      ratePerSecond: 50,
      burst: 5,
      digest: false,
      rateLimiter: (key, options) => {
        made.push(`${key} ${options.rate}/${options.burst}`);
        const local = localRateLimiter(key, options);
        return {
          ...local,
          block: (ms) => {
            blocked.push([key, ms]);
            local.block(ms);
          },
        };
      },
    });
    await slack.send(notification(), { signal: never, target: { channel: "#a" } });
    await slack.send(notification(), { signal: never, target: { channel: "#b" } });
    await channelErrorOf(slack.send(notification(), { signal: never, target: { channel: "#a" } }));
    expect(made).toEqual(["slack:#a 50/5", "slack:#b 50/5"]);
    expect(blocked).toEqual([["slack:#a", 2000]]);
  });

  test("a 429 is retriable with Retry-After, and holds that channel's bucket", async () => {
    const s = server({ ratePerSecond: 1, burst: 1, retryAfterSeconds: 2 });
    // The channel allows more than the server: the server has to say no.
    const slack = createSlackChannel({
      token,
      templates,
      apiUrl: s.apiUrl,
      ratePerSecond: 50,
      burst: 5,
    });
    await slack.send(notification(), { signal: never, target: { channel: "#busy" } });
    const err = await channelErrorOf(
      slack.send(notification(), { signal: never, target: { channel: "#busy" } }),
    );
    expect(err.retriable).toBe(true);
    expect(err.status).toBe(429);
    expect(err.retryAfterMs).toBe(2000);
    const waiting = (slack.status?.().waiting ?? {}) as Record<string, number>;
    expect(waiting["#busy"]).toBeGreaterThan(1000);
    // Another Slack channel is not held.
    await slack.send(notification(), { signal: never, target: { channel: "#quiet" } });
  });

  test.each([[false], [true]])(
    "a Retry-After beyond the cap is not slept: the send is deferred, and so are the next until then (digest %p)",
    async (digest) => {
      const s = server({ ratePerSecond: 1, burst: 1, retryAfterSeconds: 3600 });
      const slack = createSlackChannel({
        token,
        templates,
        apiUrl: s.apiUrl,
        ratePerSecond: 50,
        burst: 5,
        digest,
        retryAfterMaxMs: 30_000,
      });
      const waits: number[] = [];
      const dispatch = createDispatcher({
        channels: [slack],
        logger: createLogger({ sink: () => {} }),
        sleep: async (ms) => void waits.push(ms),
      });
      const send = () =>
        withGuard(
          dispatch(
            notification(),
            { channels: ["slack"], targets: { slack: { channel: "#busy" } } },
            never,
          ),
        );
      expect((await send())[0]?.status).toBe("delivered");
      const [limited] = await send();
      expect(limited?.status).toBe("deferred");
      expect(waits).toEqual([]);
      const waiting = (slack.status?.().waiting ?? {}) as Record<string, number>;
      expect(waiting["#busy"] ?? 0).toBeLessThanOrEqual(30_000);
      // Until Slack's hour is over, sends to that Slack channel are deferred without asking again.
      const asked = s.rateLimited();
      expect((await send())[0]?.status).toBe("deferred");
      expect(s.rateLimited()).toBe(asked);
      expect(s.messages).toHaveLength(1);
    },
    30_000,
  );

  test("without digests, stays under Slack's per-channel limit: no 429 for a burst to one channel", async () => {
    const s = server({ ratePerSecond: 5, burst: 3 });
    // The channel keeps a margin under the server's allowance (as production keeps under
    // Slack's): requests sent 250 ms apart can arrive closer together.
    const slack = createSlackChannel({
      token,
      templates,
      apiUrl: s.apiUrl,
      ratePerSecond: 4,
      burst: 1,
      digest: false,
    });
    await Promise.all(
      Array.from({ length: 8 }, () =>
        slack.send(notification(), { signal: never, target: { channel: "#one" } }),
      ),
    );
    expect(s.messages).toHaveLength(8);
    expect(s.rateLimited()).toBe(0);
  });

  test("without digests, when Slack throttles anyway, nothing is lost and nothing is posted twice", async () => {
    const s = server({ ratePerSecond: 10, burst: 1, retryAfterSeconds: 1 });
    const dispatch = eagerChannel(s, false);
    const outcomes = await Promise.all(Array.from({ length: 8 }, () => dispatch(notification())));
    expect(outcomes.flat().map((o) => o.status)).toEqual(Array(8).fill("delivered"));
    expect(s.rateLimited()).toBeGreaterThan(0);
    expect(s.messages).toHaveLength(8);
  }, 30_000);

  /** How many notifications each posted message carried (a digest says it in its heading). */
  const carried = (s: SlackServer) =>
    s.messages.map((m) => Number(m.metadata?.event_payload.count));

  test("digest mode: one message alone, then a burst to the same Slack channel as one digest, each send receipted", async () => {
    const s = server({ ratePerSecond: 5, burst: 1 });
    const posted: number[] = [];
    const slack = createSlackChannel({
      token,
      templates,
      apiUrl: s.apiUrl,
      ratePerSecond: 2,
      burst: 1,
      onPosted: (n) => posted.push(n),
    });
    // A lone notification gets its own message; what queues while the bucket refills (500 ms)
    // goes out together.
    const receipts = [
      await slack.send(notification(), { signal: never, target: { channel: "#one" } }),
      ...(await Promise.all(
        Array.from({ length: 11 }, () =>
          slack.send(notification(), { signal: never, target: { channel: "#one" } }),
        ),
      )),
    ];
    expect(carried(s)).toEqual([1, 11]);
    expect(posted).toEqual([1, 11]);
    expect(s.rateLimited()).toBe(0);
    const [first, digest] = s.messages;
    expect(first?.text).toContain("Positive report uploaded: q3.pdf");
    expect(digest?.text).toBe("11 new uploads: 11 positive");
    expect(JSON.stringify(digest?.blocks)).toContain("…and 1 more");
    expect(receipts[0]?.providerId).toBe(`#one/${first?.ts}`);
    expect(new Set(receipts.slice(1).map((r) => r.providerId))).toEqual(
      new Set([`#one/${digest?.ts}`]),
    );
  });

  test("digest mode: SLACK_DIGEST_MAX splits a large burst; other Slack channels go their own way", async () => {
    const s = server({ ratePerSecond: 1000, burst: 100 });
    const slack = createSlackChannel({
      token,
      templates,
      apiUrl: s.apiUrl,
      ratePerSecond: 20,
      burst: 1,
      digestMax: 5,
    });
    await Promise.all([
      ...Array.from({ length: 12 }, () =>
        slack.send(notification(), { signal: never, target: { channel: "#big" } }),
      ),
      slack.send(notification(), { signal: never, target: { channel: "#small" } }),
    ]);
    const big = s.messages.filter((m) => m.channel === "#big");
    expect(big.map((m) => m.metadata?.event_payload.count)).toEqual([5, 5, 2]);
    expect(s.messages.filter((m) => m.channel === "#small")).toHaveLength(1);
  });

  test("digest mode: when Slack throttles, every notification is still delivered once, in far fewer messages", async () => {
    const s = server({ ratePerSecond: 2, burst: 1, retryAfterSeconds: 1 });
    const dispatch = eagerChannel(s, true);
    // Six waves of five, 20 ms apart: the channel posts each as it comes, Slack (2/s) refuses.
    const pending = [];
    const ids: string[] = [];
    for (let wave = 0; wave < 6; wave++) {
      for (let i = 0; i < 5; i++) {
        const n = notification();
        ids.push(n.eventId);
        pending.push(dispatch(n));
      }
      await Bun.sleep(20);
    }
    const outcomes = await Promise.all(pending);
    expect(outcomes.flat().map((o) => o.status)).toEqual(Array(30).fill("delivered"));
    expect(s.rateLimited()).toBeGreaterThan(0);
    // Nothing posted twice: the messages carry exactly the 30 notifications between them.
    expect(carried(s).reduce((a, b) => a + b, 0)).toBe(30);
    expect(s.carriedEventIds().sort()).toEqual(ids.sort());
    expect(s.messages.length).toBeLessThan(30);
  }, 30_000);

  test("digest mode: a final error fails every notification of the message, finally", async () => {
    const s = server();
    s.failNext({ error: "msg_too_long" }, 2);
    const slack = createSlackChannel({
      token,
      templates,
      apiUrl: s.apiUrl,
      ratePerSecond: 1000,
      burst: 1,
    });
    const errors = await Promise.all(
      Array.from({ length: 4 }, () =>
        channelErrorOf(slack.send(notification(), { signal: never, target: { channel: "#x" } })),
      ),
    );
    expect(errors.map((e) => [e.retriable, e.status])).toEqual(
      Array(4).fill([false, "msg_too_long"]),
    );
    expect(s.messages).toHaveLength(0);
  });

  test("digest mode: on shutdown, queued sends end with the abort reason and nothing more is posted", async () => {
    const s = server();
    const slack = createSlackChannel({
      token,
      templates,
      apiUrl: s.apiUrl,
      ratePerSecond: 1,
      burst: 1,
    });
    const stop = new AbortController();
    await slack.send(notification(), { signal: stop.signal, target: { channel: "#q" } });
    // The bucket is empty for a second: these two wait in the queue.
    const queued = Array.from({ length: 2 }, () =>
      slack.send(notification(), { signal: stop.signal, target: { channel: "#q" } }),
    );
    await Bun.sleep(50);
    expect(slack.status?.().queued).toEqual({ "#q": 2 });
    stop.abort(new Error("shutting down"));
    const rest = await Promise.allSettled(queued);
    expect(rest.map((r) => (r.status === "rejected" ? String(r.reason) : r.status))).toEqual([
      "Error: shutting down",
      "Error: shutting down",
    ]);
    expect(s.messages).toHaveLength(1);
    await expect(
      slack.send(notification(), { signal: stop.signal, target: { channel: "#q" } }),
    ).rejects.toThrow("shutting down");
  });

  test("the Slack test server refuses malformed metadata as Slack does", async () => {
    const s = server();
    const post = async (metadata: string) =>
      (await (
        await fetch(`${s.apiUrl}chat.postMessage`, {
          method: "POST",
          headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
          body: JSON.stringify({ channel: "#x", text: "hi", metadata }),
        })
      ).json()) as { ok: boolean; error?: string };
    expect(await post("{")).toEqual({ ok: false, error: "invalid_metadata_format" });
    expect(await post('{"event_payload":{}}')).toEqual({
      ok: false,
      error: "invalid_metadata_format",
    });
    expect((await post('{"event_type":"t","event_payload":{"a":1}}')).ok).toBe(true);
    expect(s.messages[0]?.metadata).toEqual({ event_type: "t", event_payload: { a: 1 } });
  });

  test("digest mode: a notification that cannot be rendered fails finally; the rest of its digest is posted", async () => {
    const s = server();
    const poisoned = (n: Notification) => n.fileName === "bad.pdf";
    const fragile: SlackTemplates = {
      ...templates,
      slack: (n) => {
        if (poisoned(n)) throw new URIError("URI malformed");
        return templates.slack(n);
      },
      slackDigest: (ns) => {
        if (ns.some(poisoned)) throw new URIError("URI malformed");
        return templates.slackDigest(ns);
      },
    };
    const slack = createSlackChannel({ token, templates: fragile, apiUrl: s.apiUrl });
    const sends = [notification(), notification({ fileName: "bad.pdf" }), notification()].map((n) =>
      slack.send(n, { signal: never, target: { channel: "#x" } }),
    );
    const [first, bad, third] = await Promise.allSettled(sends);
    expect(first?.status).toBe("fulfilled");
    expect(third?.status).toBe("fulfilled");
    const err = (bad as PromiseRejectedResult).reason as ChannelError;
    expect(err).toBeInstanceOf(ChannelError);
    expect(err.retriable).toBe(false);
    expect(err.message).toContain("cannot render the message: URI malformed");
    expect(carried(s)).toEqual([2]);
    expect(slack.status?.().queued).toEqual({});
  });

  test("a key with a lone surrogate (valid JSON, not valid UTF-16) still renders and posts", async () => {
    const s = server();
    const slack = createSlackChannel({ token, templates, apiUrl: s.apiUrl, digest: false });
    await slack.send(notification({ objectKey: "reports/positive/x\ud800y.pdf" }), {
      signal: never,
      target: { channel: "#x" },
    });
    expect(s.messages).toHaveLength(1);
  });

  test("refuses a digest size outside 2..1000", () => {
    for (const digestMax of [1, 1001, 2.5]) {
      expect(() => createSlackChannel({ token, templates, digestMax })).toThrow(
        "SLACK_DIGEST_MAX: expected an integer from 2 to 1000",
      );
    }
  });

  test("a 1,000-character Korean file name and HTML in the key still post", async () => {
    const s = server();
    const slack = createSlackChannel({ token, templates, apiUrl: s.apiUrl, defaultChannel: "#x" });
    const name = `${"보고서".repeat(333)}가.pdf`;
    await slack.send(
      notification({
        fileName: name,
        objectKey: `uploads/<b>${name}</b>`,
        s3Url: `s3://fanda-uploads/uploads/<b>${name}</b>`,
        category: "unknown-category",
      }),
      { signal: never, target: {} },
    );
    expect(s.messages).toHaveLength(1);
    expect(s.messages[0]?.text).toContain("&lt;b&gt;");
  });

  test.each([
    [{ token: "abc" }, /SLACK_BOT_TOKEN/],
    [{ token, apiUrl: "http://127.0.0.1/api" }, /must end with \//],
    [{ token, apiUrl: "nope" }, /SLACK_API_URL: not a valid URL/],
    [{ token, ratePerSecond: 0 }, /SLACK_RATE_PER_SECOND/],
    [{ token, burst: 0 }, /SLACK_BURST/],
  ])("refuses %p", (options, message) => {
    expect(() => createSlackChannel({ templates, ...options })).toThrow(message);
  });
});

describe("slack channel: trace ids in the message metadata", () => {
  const traced = (traceId: string) =>
    extractTraceContext({ traceparent: `00-${traceId}-b7ad6b7169203331-01` });

  test.each([false, true])(
    "metadata carries the trace id of each notification the message carries (digest %p)",
    async (digest) => {
      const tracing = await startTracing({
        serviceName: "t",
        sampler: "parentbased_always_on",
        samplerRatio: 1,
      });
      try {
        const s = server();
        const slack = createSlackChannel({ token, templates, apiUrl: s.apiUrl, digest });
        const target = { channel: "#t" };
        const a = "0af7651916cd43dd8448eb211c80319c";
        const b = "1bf7651916cd43dd8448eb211c80319d";
        await Promise.all([
          runInContext(traced(a), () => slack.send(notification(), { signal: never, target })),
          runInContext(traced(b), () => slack.send(notification(), { signal: never, target })),
        ]);
        const payloads = s.messages.map((m) => m.metadata?.event_payload ?? {});
        const pairs = payloads.flatMap((p) => {
          const ids = String(p.event_ids).split(",");
          const traces = String(p.trace_ids).split(",");
          expect(traces).toHaveLength(ids.length);
          return traces;
        });
        expect(pairs.sort()).toEqual([a, b]);
      } finally {
        await tracing.shutdown();
      }
    },
  );
});
