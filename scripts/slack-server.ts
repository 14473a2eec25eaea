/**
 * A Slack Web API test server: answers `auth.test` and `chat.postMessage` the way Slack does,
 * for the tests and the local run (Slack itself cannot be reached from here).
 *
 * - `ok:false` with Slack's error codes: invalid_auth (wrong token), channel_not_found
 *   (channel not in the list, when one is given), msg_too_long, no_text, invalid_blocks;
 * - HTTP 429 with `Retry-After` and `{"ok":false,"error":"ratelimited"}` when a channel gets
 *   more than its limit (Slack: about one message per second per channel, short bursts);
 * - injected failures for tests (`failNext`): an error code, or an HTTP status; and posts that
 *   are never answered (`stallNext`) or whose body never ends (`stallBodyNext`), for timeout
 *   and shutdown tests.
 *
 *   bun scripts/slack-server.ts [--port 8083] [--token xoxb-local] [--rate 1] [--burst 3]
 *
 * `GET /messages` lists what was posted; each post is also printed.
 */

import { parseArgs } from "node:util";
import { Hono } from "hono";

/** One accepted message. */
export interface PostedMessage {
  channel: string;
  text?: string;
  blocks?: unknown[];
  /** Message metadata, when the post had some. */
  metadata?: { event_type: string; event_payload: Record<string, unknown> };
  ts: string;
  at: number;
}

/** Options of {@link startSlackServer}. */
export interface SlackServerOptions {
  port?: number;
  token?: string;
  /** Channels that exist; unset: every channel exists. */
  channels?: string[];
  /** Messages per second per channel (default 1) and burst (default 3). */
  ratePerSecond?: number;
  burst?: number;
  /** Seconds announced in Retry-After on 429 (default 1). */
  retryAfterSeconds?: number;
  print?: boolean;
  /** Keep posted messages in `messages` (default true; benchmarks count them instead). */
  keepMessages?: boolean;
  /** Called for every accepted message. */
  onMessage?: (message: PostedMessage) => void;
}

/** A running test server. */
export interface SlackServer {
  /** Base URL for @slack/web-api's slackApiUrl (ends with /api/). */
  apiUrl: string;
  messages: PostedMessage[];
  /** How many posts were answered 429. */
  rateLimited(): number;
  /** The event ids the kept messages carried (their `fanda_notifications` metadata), in order. */
  carriedEventIds(): string[];
  /** Answers the next `count` posts with `error` (an ok:false code) or an HTTP status. */
  failNext(failure: { error: string } | { status: number }, count: number): void;
  /** Accepts `token` from now on (the old one answers invalid_auth, as a revoked token does). */
  setToken(token: string): void;
  /** Leaves the next `count` posts unanswered (until the server stops). */
  stallNext(count: number): void;
  /** Answers the next `count` posts' headers (200) and the start of the body, then nothing more. */
  stallBodyNext(count: number): void;
  stop(): Promise<void>;
}

/** Starts the server on 127.0.0.1. */
export function startSlackServer(options: SlackServerOptions = {}): SlackServer {
  let token = options.token ?? "xoxb-local";
  const rate = options.ratePerSecond ?? 1;
  const burst = options.burst ?? 3;
  const retryAfter = options.retryAfterSeconds ?? 1;
  const messages: PostedMessage[] = [];
  let limited = 0;
  let failures: { failure: { error: string } | { status: number }; count: number } | undefined;
  let stalls = 0;
  let bodyStalls = 0;
  const stalled: (() => void)[] = [];
  let lastTs = 0;

  const nextTs = () => {
    lastTs = Math.max(lastTs + 1, Date.now() * 1000);
    return `${Math.floor(lastTs / 1_000_000)}.${String(lastTs % 1_000_000).padStart(6, "0")}`;
  };

  /** A token bucket per channel: `rate` per second sustained, up to `burst` back to back. */
  const buckets = new Map<string, { tokens: number; at: number }>();
  const allowed = (channel: string) => {
    const now = Date.now();
    const b = buckets.get(channel) ?? { tokens: burst, at: now };
    b.tokens = Math.min(burst, b.tokens + ((now - b.at) / 1000) * rate);
    b.at = now;
    buckets.set(channel, b);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  };

  const readBody = async (req: Request): Promise<Record<string, unknown>> => {
    const type = req.headers.get("content-type") ?? "";
    if (type.includes("application/json")) return (await req.json()) as Record<string, unknown>;
    const form = new URLSearchParams(await req.text());
    const out: Record<string, unknown> = {};
    for (const [k, v] of form) out[k] = v;
    return out;
  };

  const app = new Hono();
  app.get("/messages", (c) => c.json(messages));
  app.post("/api/:method", async (c) => {
    const method = c.req.param("method");
    const body = await readBody(c.req.raw);
    const auth = c.req.header("authorization") ?? (body.token ? `Bearer ${body.token}` : "");
    if (auth !== `Bearer ${token}`) return c.json({ ok: false, error: "invalid_auth" });
    if (method === "auth.test") {
      return c.json({
        ok: true,
        url: "https://fanda-local.slack.com/",
        team: "fanda-local",
        user: "fanda",
        bot_id: "B0LOCAL",
      });
    }
    if (method !== "chat.postMessage") return c.json({ ok: false, error: "unknown_method" });
    if (stalls > 0) {
      stalls--;
      await new Promise<void>((release) => stalled.push(release));
      return c.text("stopped", 503);
    }
    if (bodyStalls > 0) {
      bodyStalls--;
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(new TextEncoder().encode('{"ok":'));
          stalled.push(() => {
            try {
              controller.close();
            } catch {
              // The client already cancelled the body.
            }
          });
        },
      });
      return new Response(body, { headers: { "content-type": "application/json" } });
    }
    if (failures && failures.count > 0) {
      failures.count--;
      const f = failures.failure;
      if ("status" in f) return c.text("injected failure", f.status as 500);
      return c.json({ ok: false, error: f.error });
    }
    const channel = typeof body.channel === "string" ? body.channel : "";
    if (!channel) return c.json({ ok: false, error: "channel_not_found" });
    if (options.channels && !options.channels.includes(channel)) {
      return c.json({ ok: false, error: "channel_not_found" });
    }
    const text = typeof body.text === "string" ? body.text : undefined;
    let blocks: unknown[] | undefined;
    if (body.blocks !== undefined) {
      try {
        const parsed = typeof body.blocks === "string" ? JSON.parse(body.blocks) : body.blocks;
        if (!Array.isArray(parsed)) return c.json({ ok: false, error: "invalid_blocks" });
        blocks = parsed;
      } catch {
        return c.json({ ok: false, error: "invalid_blocks" });
      }
    }
    let metadata: PostedMessage["metadata"];
    if (body.metadata !== undefined) {
      try {
        const parsed =
          typeof body.metadata === "string" ? JSON.parse(body.metadata) : body.metadata;
        if (typeof parsed?.event_type !== "string" || typeof parsed?.event_payload !== "object") {
          return c.json({ ok: false, error: "invalid_metadata_format" });
        }
        metadata = parsed;
      } catch {
        return c.json({ ok: false, error: "invalid_metadata_format" });
      }
    }
    if (!text && !blocks) return c.json({ ok: false, error: "no_text" });
    if (text && text.length > 40_000) return c.json({ ok: false, error: "msg_too_long" });
    if (!allowed(channel)) {
      limited++;
      return c.json({ ok: false, error: "ratelimited" }, 429, {
        "retry-after": String(retryAfter),
      });
    }
    const ts = nextTs();
    const message: PostedMessage = {
      channel,
      ts,
      at: Date.now(),
      ...(text === undefined ? {} : { text }),
      ...(blocks ? { blocks } : {}),
      ...(metadata ? { metadata } : {}),
    };
    if (options.keepMessages !== false) messages.push(message);
    options.onMessage?.(message);
    if (options.print) {
      const traces = metadata?.event_payload.trace_ids;
      const carried = typeof traces === "string" && traces ? ` (metadata trace_ids ${traces})` : "";
      console.log(`message to ${channel}${carried}: ${text ?? JSON.stringify(blocks)}`);
    }
    return c.json({ ok: true, channel, ts, message: { text, ts } });
  });

  const server = Bun.serve({ hostname: "127.0.0.1", port: options.port ?? 0, fetch: app.fetch });
  return {
    apiUrl: `http://127.0.0.1:${server.port}/api/`,
    messages,
    rateLimited: () => limited,
    carriedEventIds: () =>
      messages.flatMap((m) =>
        typeof m.metadata?.event_payload.event_ids === "string"
          ? m.metadata.event_payload.event_ids.split(",")
          : [],
      ),
    failNext(failure, count) {
      failures = { failure, count };
    },
    setToken(next) {
      token = next;
    },
    stallNext(count) {
      stalls = count;
    },
    stallBodyNext(count) {
      bodyStalls = count;
    },
    stop: () => {
      for (const release of stalled.splice(0)) release();
      return server.stop(true);
    },
  };
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      port: { type: "string", default: "8083" },
      token: { type: "string", default: "xoxb-local" },
      // Slack's documented chat.postMessage limit: about one per second per channel.
      rate: { type: "string", default: "1" },
      burst: { type: "string", default: "3" },
    },
  });
  const server = startSlackServer({
    port: Number(values.port),
    token: values.token,
    ratePerSecond: Number(values.rate),
    burst: Number(values.burst),
    print: true,
  });
  console.log(`Slack test server on ${server.apiUrl} (token ${values.token})`);
}
