/** The email channel against aws-ses-v2-local (an SES v2 emulator) on a free port. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { SESv2Client, SendEmailCommand } from "@aws-sdk/client-sesv2";
import sesLocal from "aws-ses-v2-local";
import type { Notification } from "../../../../core/contract.ts";
import { createLogger } from "../../../../core/log.ts";
import { extractTraceContext, runInContext, startTracing } from "../../../../core/tracing.ts";
import { LOCAL_SES_ACCOUNT, type SesLocal, startSesLocal } from "../../../../scripts/ses-local.ts";
import { aNotification } from "../../../../test/support/notifications.ts";
import { createDispatcher } from "../../dispatch.ts";
import { ChannelConfigError } from "../../errors.ts";
import { localRateLimiter } from "../../rate-limit.ts";
import { channelErrorOf } from "../testing.ts";
import { createEmailChannel, isEmailAddress, SES_QUOTA_SETTING, type SesApi } from "./email.ts";
import { loadEmailTemplates } from "./render.ts";

const templates = loadEmailTemplates();
const never = new AbortController().signal;
let server: Server;
let endpoint: string;
const saved = { ...process.env };

interface StoredEmail {
  messageId: string;
  from: string;
  destination: { to: string[] };
  subject: string;
  body: { html?: string; text?: string };
}

const store = async (): Promise<StoredEmail[]> =>
  ((await (await fetch(`${endpoint}/store`)).json()) as { emails: StoredEmail[] }).emails;

beforeAll(async () => {
  // The SDK's default credential chain reads these; the emulator accepts anything.
  process.env.AWS_ACCESS_KEY_ID = "local";
  process.env.AWS_SECRET_ACCESS_KEY = "local";
  process.env.AWS_SES_ACCOUNT = JSON.stringify(LOCAL_SES_ACCOUNT);
  server = await sesLocal({ host: "127.0.0.1", port: 0 });
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(() => {
  server?.close();
  for (const k of ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SES_ACCOUNT"]) {
    if (saved[k] === undefined) delete process.env[k];
    else process.env[k] = saved[k];
  }
});

const notification = (over: Partial<Notification> = {}): Notification =>
  aNotification({
    key: "reports/negative/incident.csv",
    category: "negative",
    size: 2048,
    ...over,
  });

const channel = (over: Partial<Parameters<typeof createEmailChannel>[0]> = {}) =>
  createEmailChannel({
    from: "fanda@example.com",
    templates,
    region: "ap-northeast-2",
    endpoint,
    defaultTo: ["ops@example.com"],
    ...over,
  });

describe("email channel", () => {
  test("reads MaxSendRate from GetAccount at connect", async () => {
    const email = channel();
    await email.connect?.();
    expect(email.status?.()).toMatchObject({ maxSendRate: 14, source: "GetAccount" });
  });

  test("its send-rate limiter comes from the injected factory as email, re-made at the account's rate", async () => {
    const made: string[] = [];
    const email = channel({
      rateLimiter: (key, options) => {
        made.push(`${key} ${options.rate}/${options.burst ?? 1}`);
        return localRateLimiter(key, options);
      },
    });
    await email.connect?.();
    await email.send(notification(), { signal: never, target: {} });
    expect(made).toEqual(["email 1/1", "email 14/14"]);
  });

  test("a configured rate wins over the account's", async () => {
    const email = channel({ maxSendRate: 3 });
    await email.connect?.();
    expect(email.status?.()).toMatchObject({ maxSendRate: 3, source: "configured" });
  });

  test("sends the category's subject, HTML and text to the default recipients; MessageId is the receipt", async () => {
    const n = notification();
    const receipt = await channel().send(n, { signal: never, target: {} });
    const sent = (await store()).find((e) => e.messageId === receipt.providerId);
    expect(sent?.from).toBe("fanda@example.com");
    expect(sent?.destination.to).toEqual(["ops@example.com"]);
    expect(sent?.subject).toBe("[Fanda] Negative report needs attention: incident.csv");
    expect(sent?.body.text).toContain("Key:      reports/negative/incident.csv");
    expect(sent?.body.html).toContain("<code>reports/negative/incident.csv</code>");
  });

  test("sends to the route's recipients when it names them", async () => {
    const receipt = await channel().send(notification(), {
      signal: never,
      target: { to: ["risk@example.com", "cfo@example.com"] },
    });
    const sent = (await store()).find((e) => e.messageId === receipt.providerId);
    expect(sent?.destination.to).toEqual(["risk@example.com", "cfo@example.com"]);
  });

  test("escapes HTML in the key in the HTML body, keeps a 1,000-character Korean name intact in text", async () => {
    const name = `${"보고서".repeat(333)}가.pdf`;
    const receipt = await channel().send(
      notification({
        fileName: name,
        objectKey: `uploads/<img src=x onerror=alert(1)>/${name}`,
        category: "unknown-category",
      }),
      { signal: never, target: {} },
    );
    const sent = (await store()).find((e) => e.messageId === receipt.providerId);
    expect(sent?.body.html).not.toContain("<img");
    expect(sent?.body.html).toContain("&lt;img src=x onerror=alert(1)&gt;");
    expect(sent?.body.text).toContain(name);
    expect(sent?.subject.startsWith("[Fanda] New file (unknown-category): ")).toBe(true);
  });

  test("no recipients at all is the channel's configuration (EMAIL_TO); a bad address is final for the message", async () => {
    const none = await channelErrorOf(
      channel({ defaultTo: [] }).send(notification(), { signal: never, target: {} }),
    );
    expect(none).toBeInstanceOf(ChannelConfigError);
    expect((none as ChannelConfigError).setting).toBe("EMAIL_TO");
    expect(none.message).toContain("no recipients for category negative");
    const bad = await channelErrorOf(
      channel().send(notification(), { signal: never, target: { to: ["not-an-address"] } }),
    );
    expect(bad.retriable).toBe(false);
    expect(bad.message).toContain("invalid recipient(s): not-an-address");
  });

  const failing = (error: object): SesApi => ({
    send: async () => {
      throw error;
    },
  });
  const status = (httpStatusCode: number) => ({ $metadata: { httpStatusCode } });
  test.each([
    [{ name: "TooManyRequestsException", ...status(429) }, {}, "retriable"],
    [{ name: "LimitExceededException", ...status(400) }, {}, "retriable"],
    [{ name: "InternalFailure", ...status(500) }, {}, "retriable"],
    [{ name: "ServiceUnavailable", ...status(503) }, {}, "retriable"],
    [{ name: "TimeoutError", message: "socket hang up" }, {}, "retriable"],
    [{ name: "MessageRejected", ...status(400) }, {}, "final"],
    [{ name: "BadRequestException", ...status(400) }, {}, "final"],
    [
      {
        name: "MessageRejected",
        message: "Email address is not verified: ops@example.com",
        ...status(400),
      },
      {},
      "final",
    ],
    [
      {
        name: "MessageRejected",
        message:
          "Email address is not verified. The following identities failed the check: fanda@example.com",
        ...status(400),
      },
      {},
      "SES_FROM",
    ],
    // Sandbox: an unverified recipient whose address merely contains the sender's is the
    // message's problem, not the channel's.
    [
      {
        name: "MessageRejected",
        message:
          "Email address is not verified. The following identities failed the check in region AP-NORTHEAST-2: myfanda@example.com",
        ...status(400),
      },
      {},
      "final",
    ],
    [
      {
        name: "MessageRejected",
        message:
          "Email address is not verified. The following identities failed the check in region AP-NORTHEAST-2: fanda@example.com.au",
        ...status(400),
      },
      {},
      "final",
    ],
    [
      {
        name: "MessageRejected",
        message:
          "Email address is not verified. The following identities failed the check in region AP-NORTHEAST-2: ops@example.com, fanda@example.com.",
        ...status(400),
      },
      {},
      "SES_FROM",
    ],
    [{ name: "SendingPausedException", ...status(400) }, {}, "SES account"],
    [{ name: "AccountSuspendedException", ...status(400) }, {}, "SES account"],
    [{ name: "MailFromDomainNotVerifiedException", ...status(400) }, {}, "SES_FROM"],
    [{ name: "NotFoundException", ...status(404) }, {}, "SES_FROM"],
    [
      { name: "NotFoundException", ...status(404) },
      { configurationSet: "gone" },
      "SES_CONFIGURATION_SET",
    ],
    [{ name: "AccessDeniedException", ...status(403) }, {}, "AWS credentials"],
    [{ name: "UnrecognizedClientException", ...status(403) }, {}, "AWS credentials"],
    [{ name: "ExpiredTokenException", ...status(403) }, {}, "AWS credentials"],
  ])("SES error %p (options %p) is %s", async (error, over, expected) => {
    const email = channel({ client: failing(error), ...over });
    const err = await channelErrorOf(email.send(notification(), { signal: never, target: {} }));
    const kind =
      err instanceof ChannelConfigError ? err.setting : err.retriable ? "retriable" : "final";
    expect(kind).toBe(expected);
    expect(err.message).toContain(error.name);
  });

  test("SES sending paused: 50 sends deferred (none failed), the channel down naming the SES account; resumed, they deliver", async () => {
    let paused = true;
    // The emulator behind a switch: aws-ses-v2-local cannot pause sending.
    const ses = new SESv2Client({ region: "ap-northeast-2", endpoint, maxAttempts: 1 });
    const pausable: SesApi = {
      send: async (command, options) => {
        if (paused && command instanceof SendEmailCommand) {
          throw Object.assign(new Error("Sending paused for this account"), {
            name: "SendingPausedException",
            $metadata: { httpStatusCode: 400 },
          });
        }
        return ses.send(command as SendEmailCommand, options);
      },
    };
    const dispatch = createDispatcher({
      channels: [channel({ client: pausable, maxSendRate: 1000 })],
      logger: createLogger({ sink: () => {} }),
      sleep: async () => {},
    });
    const route = { channels: ["email"], targets: {} };
    const batch = Array.from({ length: 50 }, () => notification());
    const down = await Promise.all(batch.map((m) => dispatch(m, route, never)));
    expect(down.flat().map((o) => o.status)).toEqual(Array(50).fill("deferred"));
    expect(dispatch.health().email).toMatchObject({
      breakerOpen: true,
      misconfigured: { setting: "SES account" },
    });
    paused = false;
    const before = (await store()).length;
    const up = await Promise.all(batch.map((m) => dispatch(m, route, never)));
    expect(up.flat().map((o) => o.status)).toEqual(Array(50).fill("delivered"));
    expect((await store()).length - before).toBe(50);
    expect(dispatch.health().email?.misconfigured).toBeUndefined();
  });

  test("an account the emulator cannot describe fails connect with the SES error", async () => {
    const email = channel({
      client: failing({ name: "BadRequestException", $metadata: { httpStatusCode: 400 } }),
    });
    const err = await channelErrorOf(email.connect?.() ?? Promise.resolve());
    expect(err.retriable).toBe(false);
  });

  test.each([
    [{ from: "nope" }, /SES_FROM/],
    [{ defaultTo: ["ops@example.com", "bad"] }, /EMAIL_TO: "bad"/],
    [{ maxSendRate: 0 }, /SES_MAX_SEND_RATE/],
    [{ endpoint: "::" }, /SES_ENDPOINT/],
  ])("refuses %p", (over, message) => {
    expect(() => channel(over)).toThrow(message);
  });

  test.each([
    ["ops@example.com", true],
    ["first.last+tag@sub.example.co.kr", true],
    ["no-at.example.com", false],
    ["two@@example.com", false],
    ["spaces in@example.com", false],
    ["trailing@example", false],
    ["<ops@example.com>", false],
  ])("isEmailAddress(%p) is %p", (address, ok) => {
    expect(isEmailAddress(address)).toBe(ok);
  });
});

describe("email channel: trace id tag", () => {
  test("tags the message with the active trace id, within SES's tag charset; no tag outside a trace", async () => {
    const tracing = await startTracing({
      serviceName: "t",
      sampler: "parentbased_always_on",
      samplerRatio: 1,
    });
    try {
      const inputs: SendEmailCommand["input"][] = [];
      const capturing: SesApi = {
        send: async (command) => {
          if (command instanceof SendEmailCommand) inputs.push(command.input);
          return { MessageId: "m-1" };
        },
      };
      const email = channel({ client: capturing, maxSendRate: 1000 });
      const ctx = extractTraceContext({
        traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
      });
      await runInContext(ctx, () => email.send(notification(), { signal: never, target: {} }));
      await email.send(notification(), { signal: never, target: {} });
      const tags = inputs.map((i) => i.EmailTags ?? []);
      expect(tags[0]).toContainEqual({
        Name: "trace_id",
        Value: "0af7651916cd43dd8448eb211c80319c",
      });
      for (const tag of tags.flat()) expect(tag.Value).toMatch(/^[A-Za-z0-9_-]{1,256}$/);
      expect(tags[1]?.some((t) => t.Name === "trace_id")).toBe(false);
    } finally {
      await tracing.shutdown();
    }
  });
});

describe("email channel: the daily sending quota used up", () => {
  let ses: SesLocal;
  beforeAll(async () => {
    ses = await startSesLocal();
  });
  afterAll(async () => {
    await ses.stop();
  });

  /** A channel on the emulator with a quota of `quota`, and its clock. */
  const onQuota = (quota: number) => {
    ses.setDailyQuota(ses.sent.length + quota);
    const clock = { t: 1_000 };
    const email = createEmailChannel({
      from: "fanda@example.com",
      templates,
      region: "ap-northeast-2",
      endpoint: ses.url,
      defaultTo: ["ops@example.com"],
      maxSendRate: 1000,
      now: () => clock.t,
    });
    return { email, clock };
  };

  test("is configuration-class, and sends hold without asking SES until the retry interval has passed", async () => {
    const { email, clock } = onQuota(2);
    const refusedBefore = ses.quotaRefused();
    await email.send(notification(), { signal: never, target: {} });
    await email.send(notification(), { signal: never, target: {} });
    const used = await channelErrorOf(email.send(notification(), { signal: never, target: {} }));
    expect(used).toBeInstanceOf(ChannelConfigError);
    expect((used as ChannelConfigError).setting).toBe(SES_QUOTA_SETTING);
    expect(used.message).toContain("Daily message quota exceeded");
    clock.t += 30_000;
    const held = await channelErrorOf(email.send(notification(), { signal: never, target: {} }));
    expect((held as ChannelConfigError).setting).toBe(SES_QUOTA_SETTING);
    expect(email.status?.()).toMatchObject({ dailyQuotaHoldMs: 30_000 });
    expect(ses.quotaRefused() - refusedBefore).toBe(1); // the held send never reached SES
    ses.setDailyQuota(undefined); // the window rolled on, or AWS raised the quota
    clock.t += 30_000;
    const receipt = await email.send(notification(), { signal: never, target: {} });
    expect(receipt.providerId).toBeString();
    expect(email.status?.()).not.toHaveProperty("dailyQuotaHoldMs");
  });

  test("when the hold is over, one send asks SES; the ones sent meanwhile are deferred without asking", async () => {
    const { email, clock } = onQuota(0);
    const refusedBefore = ses.quotaRefused();
    await channelErrorOf(email.send(notification(), { signal: never, target: {} }));
    clock.t += 60_000;
    const sends = Array.from({ length: 20 }, () =>
      email.send(notification(), { signal: never, target: {} }).then(
        () => "delivered",
        (e: ChannelConfigError) => e.setting,
      ),
    );
    expect(await Promise.all(sends)).toEqual(Array(20).fill(SES_QUOTA_SETTING));
    expect(ses.quotaRefused() - refusedBefore).toBe(2); // the first send, then one probe
    ses.setDailyQuota(undefined);
    clock.t += 60_000;
    const after = await Promise.all(
      Array.from({ length: 5 }, () =>
        email.send(notification(), { signal: never, target: {} }).then(
          () => "delivered",
          () => "deferred",
        ),
      ),
    );
    // The probe delivers and ends the hold; its neighbours were deferred, the next ones go.
    expect(after.filter((o) => o === "delivered")).toHaveLength(1);
    expect(await email.send(notification(), { signal: never, target: {} })).toHaveProperty(
      "providerId",
    );
  });

  test("through the dispatcher: nothing fails or is dead-lettered, the rest is deferred, SES is asked once", async () => {
    const { email } = onQuota(5);
    const refusedBefore = ses.quotaRefused();
    const told: string[] = [];
    const dispatch = createDispatcher({
      channels: [email],
      logger: createLogger({ sink: () => {} }),
      sleep: async () => {},
      onMisconfigured: (channel, setting, on) => told.push(`${channel} ${setting} ${on}`),
    });
    const route = { channels: ["email"], targets: {} };
    const outcomes: string[] = [];
    for (let i = 0; i < 20; i++) {
      const [o] = await dispatch(notification(), route, never);
      outcomes.push(o?.status ?? "none");
    }
    expect(outcomes).toEqual([...Array(5).fill("delivered"), ...Array(15).fill("deferred")]);
    expect(ses.quotaRefused() - refusedBefore).toBe(1);
    expect(told).toEqual([`email ${SES_QUOTA_SETTING} true`]);
    expect(dispatch.health().email).toMatchObject({
      misconfigured: { setting: SES_QUOTA_SETTING },
    });
    ses.setDailyQuota(undefined);
  });

  test("refuses a retry interval that is not a whole number of ms >= 1", () => {
    for (const quotaRetryMs of [0, -1, 1.5]) {
      expect(() => channel({ quotaRetryMs })).toThrow(
        "quotaRetryMs: expected a whole number of ms >= 1",
      );
    }
  });
});
