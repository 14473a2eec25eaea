/** Every channel runs the conformance suite against its provider's test server. */
import { startSlackServer } from "../../../scripts/slack-server.ts";
import { channelConformance } from "./conformance.ts";
import { createEmailChannel } from "./email/email.ts";
import { loadEmailTemplates } from "./email/render.ts";
import { createLogChannel } from "./log/log.ts";
import { loadSlackTemplates } from "./slack/render.ts";
import { createSlackChannel } from "./slack/slack.ts";
import { createWebhookChannel } from "./webhook/webhook.ts";

/**
 * A provider stand-in on 127.0.0.1 whose next answer can be set: `ok` answers with `ok()`,
 * a failure with `fail(kind)`, `stall` never answers (until stopped), `stall-body` answers
 * `ok()`'s status and headers and the first bytes of its body, then nothing more.
 */
function provider(answers: {
  ok: () => Response;
  fail: (kind: "retriable" | "final") => Response;
  /** What the provider answers every request while misconfigured. */
  misconfigured?: () => Response;
  /**
   * Status of a `stall-body` answer (default 200): one whose outcome the body decides. A
   * webhook's 2xx is decided by its status alone, so its stalled body is a 503's.
   */
  stallStatus?: number;
}) {
  let next: "ok" | "retriable" | "final" | "stall" | "stall-body" = "ok";
  let broken = false;
  const held: (() => void)[] = [];
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      await req.arrayBuffer();
      if (broken && answers.misconfigured) return answers.misconfigured();
      const mode = next;
      next = "ok";
      if (mode === "stall") {
        await new Promise<void>((release) => held.push(release));
        return new Response(null, { status: 503 });
      }
      if (mode === "stall-body") {
        const ok = answers.ok();
        const body = new ReadableStream<Uint8Array>({
          start(controller) {
            controller.enqueue(new TextEncoder().encode("{"));
            held.push(() => {
              try {
                controller.close();
              } catch {
                // The client already cancelled the body.
              }
            });
          },
        });
        // Not ok()'s status: a 204 has no body to stall.
        return new Response(body, { status: answers.stallStatus ?? 200, headers: ok.headers });
      }
      return mode === "ok" ? answers.ok() : answers.fail(mode);
    },
  });
  return {
    url: `http://127.0.0.1:${server.port}`,
    set: (mode: typeof next) => {
      next = mode;
    },
    /** Every answer is `misconfigured()` until set back. */
    misconfigure: (on: boolean) => {
      broken = on;
    },
    stop: async () => {
      for (const release of held.splice(0)) release();
      await server.stop(true);
    },
  };
}

channelConformance("webhook", async () => {
  const p = provider({
    ok: () => new Response(null, { status: 204, headers: { "x-request-id": "req-1" } }),
    fail: (kind) => new Response("no", { status: kind === "retriable" ? 503 : 400 }),
    misconfigured: () => new Response("who are you", { status: 401 }),
    stallStatus: 503,
  });
  return {
    channel: async ({ timeoutMs }) => createWebhookChannel({ url: `${p.url}/hook`, timeoutMs }),
    failRetriable: () => p.set("retriable"),
    failFinal: () => p.set("final"),
    stall: () => p.set("stall"),
    stallBody: () => p.set("stall-body"),
    misconfigure: () => {
      p.misconfigure(true);
      return "WEBHOOK_URL";
    },
    fix: () => p.misconfigure(false),
    timesOut: true,
    providerId: true,
    stop: p.stop,
  };
});

channelConformance("slack", async () => {
  const server = startSlackServer({ ratePerSecond: 1000, burst: 1000 });
  return {
    channel: async ({ timeoutMs }) =>
      createSlackChannel({
        token: "xoxb-local",
        apiUrl: server.apiUrl,
        templates: loadSlackTemplates(),
        ratePerSecond: 1000,
        burst: 1000,
        digest: false,
        timeoutMs,
      }),
    target: { channel: "#uploads" },
    failRetriable: () => server.failNext({ status: 503 }, 1),
    failFinal: () => server.failNext({ error: "msg_too_long" }, 1),
    // The token is revoked on Slack's side, then granted again.
    misconfigure: () => {
      server.setToken("xoxb-someone-else");
      return "SLACK_BOT_TOKEN";
    },
    fix: () => server.setToken("xoxb-local"),
    stall: () => server.stallNext(1),
    stallBody: () => server.stallBodyNext(1),
    timesOut: true,
    providerId: true,
    stop: () => server.stop(),
  };
});

channelConformance("email", async () => {
  // SES v2's REST answers: a MessageId, or an error named by x-amzn-ErrorType.
  const error = (status: number, type: string) =>
    new Response(JSON.stringify({ message: type }), {
      status,
      headers: { "content-type": "application/json", "x-amzn-ErrorType": type },
    });
  // The SDK's default credential chain reads these; the stand-in accepts anything.
  const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };
  process.env.AWS_ACCESS_KEY_ID = "local";
  process.env.AWS_SECRET_ACCESS_KEY = "local";
  const restore = () => {
    for (const [k, v] of [
      ["AWS_ACCESS_KEY_ID", saved.id],
      ["AWS_SECRET_ACCESS_KEY", saved.secret],
    ] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
  const p = provider({
    ok: () => Response.json({ MessageId: "ses-message-1" }),
    fail: (kind) =>
      kind === "retriable" ? error(429, "TooManyRequestsException") : error(400, "MessageRejected"),
    misconfigured: () => error(400, "SendingPausedException"),
  });
  return {
    channel: async () =>
      createEmailChannel({
        from: "fanda@example.com",
        region: "ap-northeast-2",
        endpoint: p.url,
        templates: loadEmailTemplates(),
        defaultTo: ["ops@example.com"],
        maxSendRate: 1000,
      }),
    failRetriable: () => p.set("retriable"),
    failFinal: () => p.set("final"),
    stall: () => p.set("stall"),
    stallBody: () => p.set("stall-body"),
    misconfigure: () => {
      p.misconfigure(true);
      return "SES account";
    },
    fix: () => p.misconfigure(false),
    providerId: true,
    stop: async () => {
      restore();
      await p.stop();
    },
  };
});

channelConformance("log", async () => ({
  channel: async () => createLogChannel({ write: () => {} }),
  providerId: false,
  stop: async () => {},
}));
