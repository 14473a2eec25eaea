/**
 * The `email` channel: SES v2 `SendEmail` with simple content — subject, HTML and text bodies
 * from the category's templates — to the recipients the route names (or the defaults).
 *
 * The send rate follows the account's `MaxSendRate`, read with `GetAccount` at start-up
 * (or set by configuration), through one token bucket: SES throttling is avoided rather than
 * provoked. Throttling, 5xx and network errors are retriable; sending paused, a suspended
 * account, an unverified sender or MAIL FROM domain and refused credentials are
 * configuration-class (the channel is down until fixed; nothing is dead-lettered), and so is
 * the account's daily sending quota used up (SES answers it as throttling, "Daily message
 * quota exceeded"): retrying within a message cannot wait out a 24-hour window, so the channel
 * holds its sends for `quotaRetryMs` without asking SES, then tries again;
 * `MessageRejected`, bad addresses and other 4xx are final for the message. The SDK's own retries are off, so every
 * retry is the dispatcher's and an email is never sent twice behind its back.
 */
import {
  GetAccountCommand,
  SESv2Client,
  SendEmailCommand,
  type SendEmailCommandInput,
} from "@aws-sdk/client-sesv2";
import type { Notification } from "../../../../core/contract.ts";
import { ConfigError } from "../../../../core/errors.ts";
import { traceIdOf } from "../../../../core/tracing.ts";
import {
  type Channel,
  ChannelConfigError,
  ChannelError,
  type DeliveryReceipt,
  localRateLimiter,
  type RateLimiter,
  type RateLimiterFactory,
  type SendContext,
} from "../channel.ts";
import type { EmailTemplates } from "./render.ts";

/** SES error names that trying again can fix. */
const RETRIABLE = new Set([
  "TooManyRequestsException",
  "ThrottlingException",
  "Throttling",
  "LimitExceededException",
  "InternalFailure",
  "ServiceUnavailable",
  "ServiceUnavailableException",
  "RequestTimeout",
  "RequestTimeoutException",
  "TimeoutError",
]);

/**
 * SES error names that refuse every message because of the account or the channel's settings,
 * by the setting to fix: configuration-class (the channel is down and deferred, not failed).
 */
const CONFIG_ERRORS = new Map<string, string>([
  ["SendingPausedException", "SES account"],
  ["AccountSuspendedException", "SES account"],
  ["MailFromDomainNotVerifiedException", "SES_FROM"],
  ["AccessDeniedException", "AWS credentials"],
  ["AccessDenied", "AWS credentials"],
  ["UnrecognizedClientException", "AWS credentials"],
  ["InvalidClientTokenId", "AWS credentials"],
  ["ExpiredTokenException", "AWS credentials"],
  ["ExpiredToken", "AWS credentials"],
  ["InvalidSignatureException", "AWS credentials"],
  ["SignatureDoesNotMatch", "AWS credentials"],
  ["CredentialsProviderError", "AWS credentials"],
]);

/** The `setting` a used-up daily sending quota is reported under (ChannelMisconfigured). */
export const SES_QUOTA_SETTING = "SES daily sending quota";

// SES' own words for it (API: "Daily message quota exceeded"; AWS' guides also say "sending").
const QUOTA_USED_UP = /daily (message|sending) quota exceeded/i;

/** A practical address check (SES validates for real; this catches configuration typos). */
const ADDRESS = /^[^\s@<>()[\]\\,;:"]+@[^\s@<>()[\]\\,;:"]+\.[^\s@<>()[\]\\,;:"]{2,}$/;

/** Whether `s` looks like an email address. */
export const isEmailAddress = (s: string) => s.length <= 254 && ADDRESS.test(s);

/** The part of SESv2Client the channel uses; injected in tests. */
export interface SesApi {
  send(
    command: SendEmailCommand | GetAccountCommand,
    options?: { abortSignal?: AbortSignal },
  ): Promise<unknown>;
}

/** Options of {@link createEmailChannel}. */
export interface EmailChannelOptions {
  /** Verified sender address (SES_FROM). */
  from: string;
  templates: EmailTemplates;
  /** Recipients when the route names none (EMAIL_TO). */
  defaultTo?: string[];
  /** SES configuration set (event publishing, dedicated IPs). */
  configurationSet?: string;
  region: string;
  /** Endpoint override (the local emulator). */
  endpoint?: string;
  /** Sends per second; default: the account's MaxSendRate from GetAccount. */
  maxSendRate?: number;
  /** The SES client (default: an SESv2Client from region/endpoint). */
  client?: SesApi;
  /** Told how long a send waited for the rate limit, in ms. */
  onRateLimitWait?: (ms: number) => void;
  /**
   * Makes the send-rate limiter, keyed `email` (default: local to this process); the
   * processor's is shared by every pod through Redis, as SES's rate is the account's.
   */
  rateLimiter?: RateLimiterFactory;
  /**
   * How long sends hold after SES says the daily quota is used up, in ms (default 60000): one
   * SendEmail per pod per interval finds out whether the rolling 24-hour window has room again.
   */
  quotaRetryMs?: number;
  /** Monotonic clock in ms for the quota hold (default performance.now); injected in tests. */
  now?: () => number;
}

/**
 * Whether `text` names `address` as a whole address (case-insensitively): a recipient that
 * merely contains the sender's address (my-fanda@…, fanda@….au) is not the sender.
 */
function namesAddress(text: string, address: string): boolean {
  const wanted = address.toLowerCase();
  return text
    .split(/[\s,;:<>()[\]"']+/)
    .some((word) => word.replace(/\.+$/, "").toLowerCase() === wanted);
}

/**
 * Sorts what the SDK threw. A `NotFoundException` names the configuration set when one is
 * set (SendEmail's only named resource besides the sender), else the sender identity.
 */
function classify(
  err: unknown,
  settings: { from: string; configurationSet?: string | undefined },
): ChannelError {
  const e = err as {
    name?: string;
    message?: string;
    $metadata?: { httpStatusCode?: number };
    $retryable?: unknown;
  };
  const name = e.name ?? "Error";
  const status = e.$metadata?.httpStatusCode;
  const text = `SES SendEmail failed: ${name}: ${e.message ?? ""}`.trim();
  let setting = CONFIG_ERRORS.get(name);
  if (QUOTA_USED_UP.test(e.message ?? "")) setting = SES_QUOTA_SETTING;
  if (name === "NotFoundException")
    setting = settings.configurationSet ? "SES_CONFIGURATION_SET" : "SES_FROM";
  // SES says an unverified sender in a MessageRejected naming it (recipients, in the sandbox,
  // are per message and stay final).
  if (
    name === "MessageRejected" &&
    /not verified/i.test(e.message ?? "") &&
    namesAddress(e.message ?? "", settings.from)
  )
    setting = "SES_FROM";
  if (setting)
    return new ChannelConfigError("email", setting, text, { status: status ?? name, cause: err });
  const retriable =
    RETRIABLE.has(name) ||
    (status !== undefined && (status >= 500 || status === 429)) ||
    (!status && !e.$metadata);
  return new ChannelError("email", text, {
    retriable,
    status: status ?? name,
    cause: err,
  });
}

/**
 * Creates the email channel.
 * @throws ConfigError for a bad sender, bad default recipients, a bad endpoint or rate
 * @example
 * const email = createEmailChannel({ from: "fanda@example.com", templates, region: "ap-northeast-2" });
 * await email.connect?.(); // reads MaxSendRate
 */
export function createEmailChannel(options: EmailChannelOptions): Channel {
  const issues: string[] = [];
  if (!isEmailAddress(options.from)) issues.push("SES_FROM: expected an email address");
  for (const to of options.defaultTo ?? []) {
    if (!isEmailAddress(to)) issues.push(`EMAIL_TO: ${JSON.stringify(to)} is not an email address`);
  }
  if (options.maxSendRate !== undefined && !(options.maxSendRate > 0)) {
    issues.push("SES_MAX_SEND_RATE: expected a number > 0");
  }
  if (options.endpoint !== undefined) {
    try {
      new URL(options.endpoint);
    } catch {
      issues.push("SES_ENDPOINT: not a valid URL");
    }
  }
  const quotaRetryMs = options.quotaRetryMs ?? 60_000;
  if (!Number.isInteger(quotaRetryMs) || quotaRetryMs < 1) {
    issues.push("quotaRetryMs: expected a whole number of ms >= 1");
  }
  if (issues.length > 0) throw new ConfigError("channel email", issues);
  const now = options.now ?? (() => performance.now());
  // Until when (monotonic ms) sends hold because the daily quota is used up.
  let quotaHeldUntil: number | undefined;
  // A send is asking SES whether the used-up quota has room again.
  let probing = false;

  const client: SesApi =
    options.client ??
    new SESv2Client({
      region: options.region,
      ...(options.endpoint ? { endpoint: options.endpoint } : {}),
      // One attempt per call: retries belong to the dispatcher.
      maxAttempts: 1,
    });
  let rate = options.maxSendRate ?? 1;
  let rateSource = options.maxSendRate === undefined ? "default" : "configured";
  const onWait = options.onRateLimitWait ? { onWait: options.onRateLimitWait } : {};
  const makeLimiter = options.rateLimiter ?? localRateLimiter;
  let limiter: RateLimiter = makeLimiter("email", { rate, ...onWait });

  return {
    name: "email",
    async connect() {
      if (options.maxSendRate !== undefined) return;
      let account: { SendQuota?: { MaxSendRate?: number } };
      try {
        account = (await client.send(new GetAccountCommand({}))) as typeof account;
      } catch (err) {
        throw classify(err, options);
      }
      const accountRate = account.SendQuota?.MaxSendRate;
      if (accountRate && accountRate > 0) {
        rate = accountRate;
        rateSource = "GetAccount";
        limiter = makeLimiter("email", { rate, burst: Math.max(1, Math.floor(rate)), ...onWait });
      }
    },
    status: () => ({
      maxSendRate: rate,
      source: rateSource,
      waitMs: limiter.waitMs(),
      ...(quotaHeldUntil === undefined
        ? {}
        : { dailyQuotaHoldMs: Math.max(0, Math.round(quotaHeldUntil - now())) }),
    }),
    async send(notification: Notification, { signal, target }: SendContext) {
      const to = Array.isArray(target.to) ? target.to.map(String) : (options.defaultTo ?? []);
      if (to.length === 0) {
        throw new ChannelConfigError(
          "email",
          "EMAIL_TO",
          `no recipients for category ${notification.category}: set EMAIL_TO or a routing target`,
        );
      }
      const bad = to.filter((a) => !isEmailAddress(a));
      if (bad.length > 0) {
        throw new ChannelError("email", `invalid recipient(s): ${bad.join(", ")}`, {
          retriable: false,
        });
      }
      // While the quota is used up, one send at a time (the probe, once the hold is over) asks
      // SES whether the day has room again; the others are deferred without asking.
      let probe = false;
      if (quotaHeldUntil !== undefined) {
        if (probing || quotaHeldUntil - now() > 0) throw quotaHeld();
        probing = probe = true;
      }
      try {
        await limiter.take(signal);
        // The quota may have run out while this send waited for its slot.
        if (!probe && quotaHeldUntil !== undefined) throw quotaHeld();
        return await sendEmail(notification, to, signal);
      } finally {
        if (probe) probing = false;
      }
    },
    async close() {},
  };

  /** The deferral of a send while the daily quota is used up. */
  function quotaHeld() {
    const left = Math.max(0, (quotaHeldUntil ?? 0) - now());
    return new ChannelConfigError(
      "email",
      SES_QUOTA_SETTING,
      `SES daily sending quota used up: not sending for another ${Math.ceil(left / 1000)} s`,
      { status: 429 },
    );
  }

  /** One SendEmail; a used-up quota starts the hold, a success ends it. */
  async function sendEmail(
    notification: Notification,
    to: string[],
    signal: AbortSignal,
  ): Promise<DeliveryReceipt> {
    const message = options.templates.email(notification);
    const traceId = traceIdOf();
    const input: SendEmailCommandInput = {
      FromEmailAddress: options.from,
      Destination: { ToAddresses: to },
      Content: {
        Simple: {
          Subject: { Data: message.subject, Charset: "UTF-8" },
          Body: {
            Html: { Data: message.html, Charset: "UTF-8" },
            Text: { Data: message.text, Charset: "UTF-8" },
          },
        },
      },
      ...(options.configurationSet ? { ConfigurationSetName: options.configurationSet } : {}),
      EmailTags: [
        { Name: "category", Value: notification.category.replace(/[^A-Za-z0-9_-]/g, "_") },
        { Name: "event", Value: notification.eventId },
        // The W3C trace id (32 lowercase hex digits, within SES's tag charset [A-Za-z0-9_-]).
        ...(traceId ? [{ Name: "trace_id", Value: traceId }] : []),
      ],
    };
    let result: { MessageId?: string };
    try {
      // The signal ends the request on shutdown; SES may still have accepted the message.
      result = (await client.send(new SendEmailCommand(input), {
        abortSignal: signal,
      })) as typeof result;
    } catch (err) {
      const error = classify(err, options);
      if (error instanceof ChannelConfigError && error.setting === SES_QUOTA_SETTING) {
        quotaHeldUntil = now() + quotaRetryMs;
      } else if (error.status === 429 || error.status === "TooManyRequestsException") {
        limiter.block(1000);
      }
      throw error;
    }
    quotaHeldUntil = undefined;
    return result.MessageId ? { providerId: result.MessageId } : {};
  }
}
