/**
 * Starts aws-ses-v2-local (an SES v2 emulator) for the local run, with an account whose
 * `GetAccount` answers MaxSendRate like a production SES account would.
 *
 *   bun scripts/ses-local.ts [--port 8005] [--rate 14] [--daily-quota 50000]
 *
 * Stored mail: `GET /store` (JSON) or the web viewer at the root URL. The emulator keeps no
 * `EmailTags` (where the processor puts the message's event and trace id), so a front on the
 * port passes every request through and records each accepted `SendEmail` as it was sent to
 * the SES API: `GET /sent` lists them, with their tags and the emulator's MessageId, and each
 * one is printed.
 *
 * `--rate <n>` (option `maxSendRate`) makes it an account with that fixed send rate, as SES
 * enforces one: `GetAccount` reports it as `SendQuota.MaxSendRate` (the email channel paces
 * itself from it) and a `SendEmail` over it (a token bucket of one second's worth) is answered
 * as SES v2 answers it, HTTP 429 `TooManyRequestsException` "Maximum sending rate exceeded.",
 * counted in `throttled` (`GET /throttled`). `Max24HourSend` is raised to a day at that rate,
 * so a long burst meets the rate, not the daily quota.
 *
 * `--daily-quota <n>` (option `dailyQuota`) makes it an account that has sent its day's worth
 * after `n` accepted emails: `GetAccount` reports it as `Max24HourSend` (with
 * `SentLast24Hours`), and every `SendEmail` after it is answered as SES answers it, HTTP 429
 * `TooManyRequestsException` "Daily message quota exceeded.", counted in `quotaRefused`.
 * `setDailyQuota(n)` changes it while running (AWS raised the quota, or the day rolled on).
 */

import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { parseArgs } from "node:util";
import sesLocal from "aws-ses-v2-local";

/** A plausible production account: 14 emails/s, 50,000 a day. */
export const LOCAL_SES_ACCOUNT = {
  DedicatedIpAutoWarmupEnabled: false,
  Details: {
    AdditionalContactEmailAddresses: [],
    ContactLanguage: "EN",
    MailType: "TRANSACTIONAL",
    ReviewDetails: { CaseId: "local", Status: "GRANTED" },
    UseCaseDescription: "Fanda local run",
    WebsiteURL: "https://example.com",
  },
  EnforcementStatus: "HEALTHY",
  ProductionAccessEnabled: true,
  SendingEnabled: true,
  SendQuota: { Max24HourSend: 50000, MaxSendRate: 14, SentLast24Hours: 0 },
  SuppressionAttributes: { SuppressedReasons: [] },
};

/** One `SendEmail` (SES v2) the emulator accepted, as the client sent it. */
export interface SentEmail {
  /** The MessageId the emulator answered (its `/store` entry has the same). */
  messageId: string;
  to: string[];
  subject: string;
  /** The request's `EmailTags`, in order. */
  emailTags: { Name: string; Value: string }[];
}

/** A running emulator behind its recording front. */
export interface SesLocal {
  /** The endpoint for the SES client (SES_ENDPOINT). */
  url: string;
  /** Accepted `SendEmail` requests, oldest first. */
  sent: SentEmail[];
  /** `SendEmail` requests refused for exceeding the send rate (with `maxSendRate`). */
  throttled(): number;
  /** `SendEmail` requests refused for exceeding the daily quota (with `dailyQuota`). */
  quotaRefused(): number;
  /** Sets the daily quota (emails accepted in all, since start) or lifts it (undefined). */
  setDailyQuota(quota: number | undefined): void;
  stop(): Promise<void>;
}

const SEND_EMAIL_PATH = "/v2/email/outbound-emails";
const ACCOUNT_PATH = "/v2/email/account";

/**
 * SES's per-second send rate as a token bucket holding one second's worth.
 * @returns whether a send may go now (and takes its token)
 */
function sendRateLimit(rate: number, now: () => number): () => boolean {
  const capacity = Math.max(1, rate);
  let tokens = capacity;
  let at = now();
  return () => {
    const t = now();
    tokens = Math.min(capacity, tokens + ((t - at) / 1000) * rate);
    at = t;
    if (tokens < 1) return false;
    tokens -= 1;
    return true;
  };
}

/**
 * What SES v2 answers to a SendEmail it throttles: over the account's MaxSendRate ("Maximum
 * sending rate exceeded.") or once its daily quota is used up ("Daily message quota exceeded.").
 */
const throttlingAnswer = (message: string) =>
  Response.json(
    { message },
    { status: 429, headers: { "x-amzn-errortype": "TooManyRequestsException" } },
  );

/** The fields of a SendEmail body {@link SentEmail} keeps; undefined when it is not one. */
function sentEmailOf(body: string, messageId: unknown): SentEmail | undefined {
  if (typeof messageId !== "string") return undefined;
  let input: {
    Destination?: { ToAddresses?: unknown };
    Content?: { Simple?: { Subject?: { Data?: unknown } } };
    EmailTags?: unknown;
  };
  try {
    input = JSON.parse(body);
  } catch {
    return undefined;
  }
  if (input === null || typeof input !== "object") return undefined;
  const to = input.Destination?.ToAddresses;
  const subject = input.Content?.Simple?.Subject?.Data;
  const tags = Array.isArray(input.EmailTags) ? input.EmailTags : [];
  return {
    messageId,
    to: Array.isArray(to) ? to.map(String) : [],
    subject: typeof subject === "string" ? subject : "",
    emailTags: tags
      .filter((t) => t !== null && typeof t === "object")
      .map((t: { Name?: unknown; Value?: unknown }) => ({
        Name: String(t.Name),
        Value: String(t.Value),
      })),
  };
}

/** Hop-by-hop and body-framing headers, which the pass-through sets itself. */
const UNFORWARDED = new Set(["host", "connection", "content-length", "content-encoding"]);

const forwardable = (headers: Headers) => {
  const out = new Headers();
  for (const [k, v] of headers) if (!UNFORWARDED.has(k)) out.append(k, v);
  return out;
};

/**
 * Starts the emulator on a free port and its recording front on `options.port`. The emulator's
 * `GetAccount` answers AWS_SES_ACCOUNT, set to {@link LOCAL_SES_ACCOUNT} when unset.
 * @param options.port 0 (default) picks a free port
 * @param options.print print each accepted email with its tags
 * @param options.maxSendRate a fixed send rate (emails/s): reported by GetAccount and enforced
 * @param options.dailyQuota emails accepted before every further SendEmail is refused for the
 *   day: reported by GetAccount and enforced
 * @param options.now the clock of the send-rate limit (tests)
 * @throws RangeError when maxSendRate is not a positive finite number or dailyQuota not a
 *   whole number >= 0
 */
export async function startSesLocal(
  options: {
    port?: number;
    print?: boolean;
    maxSendRate?: number;
    dailyQuota?: number;
    now?: () => number;
  } = {},
): Promise<SesLocal> {
  const rate = options.maxSendRate;
  if (rate !== undefined && !(Number.isFinite(rate) && rate > 0)) {
    throw new RangeError(`maxSendRate: expected a positive number, got ${rate}`);
  }
  const checkQuota = (quota: number | undefined) => {
    if (quota !== undefined && !(Number.isSafeInteger(quota) && quota >= 0)) {
      throw new RangeError(`dailyQuota: expected a whole number >= 0, got ${quota}`);
    }
    return quota;
  };
  let dailyQuota = checkQuota(options.dailyQuota);
  let quotaRefused = 0;
  const mayBeSent = rate === undefined ? undefined : sendRateLimit(rate, options.now ?? Date.now);
  let throttled = 0;
  process.env.AWS_SES_ACCOUNT ??= JSON.stringify(LOCAL_SES_ACCOUNT);
  const emulator: Server = await sesLocal({ host: "127.0.0.1", port: 0 });
  const upstream = `http://127.0.0.1:${(emulator.address() as AddressInfo).port}`;
  const sent: SentEmail[] = [];
  const front = Bun.serve({
    hostname: "127.0.0.1",
    port: options.port ?? 0,
    async fetch(req) {
      const url = new URL(req.url);
      if (req.method === "GET" && url.pathname === "/sent") return Response.json(sent);
      if (req.method === "GET" && url.pathname === "/throttled") return Response.json(throttled);
      const isSend = req.method === "POST" && url.pathname === SEND_EMAIL_PATH;
      if (isSend && dailyQuota !== undefined && sent.length >= dailyQuota) {
        quotaRefused++;
        return throttlingAnswer("Daily message quota exceeded.");
      }
      if (isSend && mayBeSent && !mayBeSent()) {
        throttled++;
        return throttlingAnswer("Maximum sending rate exceeded.");
      }
      const body = req.method === "GET" || req.method === "HEAD" ? undefined : await req.text();
      const res = await fetch(`${upstream}${url.pathname}${url.search}`, {
        method: req.method,
        headers: forwardable(req.headers),
        ...(body === undefined ? {} : { body }),
        redirect: "manual",
        // A fresh connection each time: a reused one can meet the emulator closing it as idle
        // (ECONNRESET under a sustained burst).
        keepalive: false,
      });
      let answer = await res.arrayBuffer();
      const quotaShown = rate !== undefined || dailyQuota !== undefined;
      if (quotaShown && req.method === "GET" && url.pathname === ACCOUNT_PATH && res.ok) {
        const account = JSON.parse(new TextDecoder().decode(answer));
        const quota = account.SendQuota ?? {};
        account.SendQuota = {
          ...quota,
          ...(rate === undefined
            ? {}
            : {
                MaxSendRate: rate,
                Max24HourSend: Math.max(quota.Max24HourSend ?? 0, rate * 86_400),
              }),
          ...(dailyQuota === undefined
            ? {}
            : { Max24HourSend: dailyQuota, SentLast24Hours: sent.length }),
        };
        answer = new TextEncoder().encode(JSON.stringify(account)).buffer as ArrayBuffer;
      }
      if (req.method === "POST" && url.pathname === "/clear-store" && res.ok) sent.length = 0;
      if (req.method === "POST" && url.pathname === SEND_EMAIL_PATH && res.ok && body) {
        let messageId: unknown;
        try {
          messageId = JSON.parse(new TextDecoder().decode(answer)).MessageId;
        } catch {
          // Not an answer with a MessageId: nothing was stored.
        }
        const email = sentEmailOf(body, messageId);
        if (email) {
          sent.push(email);
          if (options.print) {
            const tags = email.emailTags.map((t) => `${t.Name}=${t.Value}`).join(", ");
            console.log(`email to ${email.to.join(", ")}: ${email.subject} (EmailTags ${tags})`);
          }
        }
      }
      return new Response(answer, { status: res.status, headers: forwardable(res.headers) });
    },
  });
  return {
    url: `http://127.0.0.1:${front.port}`,
    sent,
    throttled: () => throttled,
    quotaRefused: () => quotaRefused,
    setDailyQuota: (quota) => {
      dailyQuota = checkQuota(quota);
    },
    stop: async () => {
      await front.stop(true);
      const closed = new Promise<void>((done) => emulator.close(() => done()));
      emulator.closeAllConnections();
      await closed;
    },
  };
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      port: { type: "string", default: "8005" },
      rate: { type: "string" },
      "daily-quota": { type: "string" },
    },
  });
  const quota = values["daily-quota"];
  const ses = await startSesLocal({
    port: Number(values.port),
    print: true,
    ...(values.rate === undefined ? {} : { maxSendRate: Number(values.rate) }),
    ...(quota === undefined ? {} : { dailyQuota: Number(quota) }),
  });
  const limit =
    (values.rate === undefined ? "" : `, ${values.rate} emails/s enforced`) +
    (quota === undefined ? "" : `, ${quota} emails a day`);
  console.log(
    `SES emulator on ${ses.url} (GET /store, GET /sent with tags, web viewer at /${limit})`,
  );
}
