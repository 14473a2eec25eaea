/**
 * The `webhook` channel: a JSON POST of the notification to one URL, signed per the Standard
 * Webhooks specification (https://www.standardwebhooks.com/) when secrets are set.
 * 2xx is delivered; 408, 429 and 5xx and network errors are retriable; 401 and 403 (the
 * receiver refuses us) and 404 and 410 (nothing there any more) are configuration-class, the
 * channel is down until WEBHOOK_URL or WEBHOOK_SECRET is fixed; other 4xx are final for the
 * message.
 */
import { createHmac } from "node:crypto";
import type { Notification } from "../../../../core/contract.ts";
import { ConfigError } from "../../../../core/errors.ts";
import { injectTraceHeaders } from "../../../../core/tracing.ts";
import {
  type Channel,
  ChannelConfigError,
  ChannelError,
  type SendContext,
  untilAborted,
} from "../channel.ts";

/** Options of {@link createWebhookChannel}. */
export interface WebhookChannelOptions {
  /** Target URL: https, or http to a loopback host (or anywhere with `allowHttp`). */
  url: string;
  /** Per-request timeout in ms (default 5000). */
  timeoutMs?: number;
  /** HTTP client (default global fetch). */
  fetch?: typeof fetch;
  /**
   * Signing secrets, `whsec_<base64 key>`, several separated by spaces or commas (rotation):
   * each request then carries `webhook-signature` with one `v1,<signature>` per secret.
   * See {@link parseWebhookSecrets}.
   */
  secret?: string;
  /** Allows `http://` to any host, not only loopback (WEBHOOK_ALLOW_HTTP); default false. */
  allowHttp?: boolean;
  /** Clock in ms since the epoch, for `webhook-timestamp` (default Date.now). */
  now?: () => number;
}

/** The Standard Webhooks request headers. */
export const WEBHOOK_HEADERS = {
  id: "webhook-id",
  timestamp: "webhook-timestamp",
  signature: "webhook-signature",
} as const;

/** The prefix of a Standard Webhooks secret. */
export const SECRET_PREFIX = "whsec_";
/** The shortest signing key, in bytes (the specification's lower bound). */
export const MIN_KEY_BYTES = 24;
/** The longest signing key, in bytes (the specification's upper bound). */
export const MAX_KEY_BYTES = 64;
/** The most secrets signed with at once: rotation needs two, a typo should not make a hundred. */
export const MAX_SECRETS = 5;

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/**
 * Reads a WEBHOOK_SECRET value: one or more `whsec_<base64>` secrets separated by spaces or
 * commas, each a key of {@link MIN_KEY_BYTES} to {@link MAX_KEY_BYTES} bytes in standard,
 * padded base64 (as the `standardwebhooks` libraries decode it). Repeats count once.
 * Returns the keys, or the problem (never quoting the value: it is a secret).
 */
export function parseWebhookSecrets(
  value: string,
): { keys: Buffer[]; problem?: undefined } | { keys?: undefined; problem: string } {
  const items = value.split(/[\s,]+/).filter((s) => s.length > 0);
  if (items.length === 0) return { problem: "expected at least one whsec_ secret" };
  const seen = new Set<string>();
  const keys: Buffer[] = [];
  for (const [i, item] of items.entries()) {
    const which = items.length > 1 ? `secret ${i + 1} of ${items.length}` : "the secret";
    if (!item.startsWith(SECRET_PREFIX)) {
      return {
        problem: `${which} does not start with ${SECRET_PREFIX}: expected Standard Webhooks secrets (whsec_<base64 key>); the x-fanda-signature scheme and its plain-text secrets are retired, see docs/webhooks.md`,
      };
    }
    const encoded = item.slice(SECRET_PREFIX.length);
    const key = Buffer.from(encoded, "base64");
    // Round-tripping rejects what Buffer would decode leniently (url-safe alphabet, missing
    // padding, stray characters) and the library would read differently or refuse.
    if (!BASE64.test(encoded) || key.toString("base64") !== encoded) {
      return { problem: `${which} is not standard padded base64 after ${SECRET_PREFIX}` };
    }
    if (key.length < MIN_KEY_BYTES || key.length > MAX_KEY_BYTES) {
      return {
        problem: `${which} is a ${key.length}-byte key; expected ${MIN_KEY_BYTES} to ${MAX_KEY_BYTES} bytes`,
      };
    }
    if (seen.has(encoded)) continue;
    seen.add(encoded);
    keys.push(key);
  }
  if (keys.length > MAX_SECRETS) {
    return { problem: `expected at most ${MAX_SECRETS} secrets, got ${keys.length}` };
  }
  return { keys };
}

/**
 * The `webhook-signature` value: for each key, `v1,` and the base64 HMAC-SHA256 of
 * `<id>.<timestamp>.<body>`, separated by spaces.
 * @param timestamp unix seconds, the value of `webhook-timestamp`
 */
export function webhookSignature(
  keys: readonly Uint8Array[],
  id: string,
  timestamp: number,
  body: string,
): string {
  const signed = `${id}.${timestamp}.${body}`;
  return keys
    .map((key) => `v1,${createHmac("sha256", key).update(signed, "utf8").digest("base64")}`)
    .join(" ");
}

const LOOPBACK_IPV4 = /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/;

/** Whether `hostname` (as URL parses it) is this machine: 127.0.0.0/8, [::1] or localhost. */
export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.toLowerCase();
  return h === "localhost" || h === "[::1]" || LOOPBACK_IPV4.test(h);
}

/**
 * Why `url` may not be used, if it may not: not http(s), or plain http to a host other than
 * loopback without `allowHttp` (notifications and their signatures would cross the network
 * in clear text).
 */
export function webhookUrlProblem(url: URL, allowHttp: boolean): string | undefined {
  if (url.protocol === "https:") return undefined;
  if (url.protocol !== "http:") return `expected http or https, got ${url.protocol}`;
  if (allowHttp || isLoopbackHost(url.hostname)) return undefined;
  return "http:// is allowed only to a loopback host (127.0.0.1, ::1, localhost); use https://, or set WEBHOOK_ALLOW_HTTP=true";
}

function retryAfterMs(header: string | null): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

/**
 * Creates the webhook channel.
 * @throws ConfigError when the URL, timeout or secret is invalid
 * @example
 * const webhook = createWebhookChannel({ url: "https://hooks.example.com/fanda" });
 */
export function createWebhookChannel(options: WebhookChannelOptions): Channel {
  const issues: string[] = [];
  let url: URL | undefined;
  try {
    url = new URL(options.url);
    const problem = webhookUrlProblem(url, options.allowHttp ?? false);
    if (problem) issues.push(`url: ${problem}`);
  } catch {
    issues.push("url: not a valid URL");
  }
  const timeoutMs = options.timeoutMs ?? 5000;
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) {
    issues.push(`timeoutMs: expected a positive integer, got ${timeoutMs}`);
  }
  const secrets = options.secret === undefined ? { keys: [] } : parseWebhookSecrets(options.secret);
  if (secrets.problem) issues.push(`WEBHOOK_SECRET: ${secrets.problem}`);
  if (issues.length > 0 || !url) throw new ConfigError("channel webhook", issues);
  const keys = secrets.keys ?? [];
  const now = options.now ?? Date.now;
  const target = url.toString();
  /** The setting a status says is wrong, for the statuses that refuse every message. */
  const configSetting = (status: number) => {
    if (status === 401 || status === 403) return keys.length > 0 ? "WEBHOOK_SECRET" : "WEBHOOK_URL";
    if (status === 404 || status === 410) return "WEBHOOK_URL";
    return undefined;
  };
  const doFetch = options.fetch ?? fetch;

  return {
    name: "webhook",
    async send(notification: Notification, { signal }: SendContext) {
      // One controller per request, unlinked afterwards: AbortSignal.any() on the process-wide
      // shutdown signal would attach a listener per request to it, and they pile up. It covers
      // the whole exchange (connect, headers, body): a receiver that sends headers and then
      // stalls the body must not hold the partition, and a shutdown must end that read too.
      const controller = new AbortController();
      const abort = () => controller.abort(signal.reason);
      if (signal.aborted) abort();
      else signal.addEventListener("abort", abort, { once: true });
      const timer = setTimeout(
        () => controller.abort(new Error(`timed out after ${timeoutMs} ms`)),
        timeoutMs,
      );
      const failed = (what: string, cause: unknown) =>
        new ChannelError("webhook", `POST ${url.host} ${what}: ${(cause as Error).message}`, {
          retriable: true,
          cause,
        });
      try {
        const body = JSON.stringify(notification);
        // The id is the event id, the same on every retry and duplicate (receivers deduplicate
        // by it); the timestamp is this attempt's, so a retry is as fresh as a first send.
        const timestamp = Math.floor(now() / 1000);
        const headers: Record<string, string> = {
          "content-type": "application/json",
          [WEBHOOK_HEADERS.id]: notification.eventId,
          [WEBHOOK_HEADERS.timestamp]: String(timestamp),
        };
        // traceparent/tracestate of this delivery: the receiver's spans join the upload's trace.
        injectTraceHeaders(headers);
        if (keys.length > 0) {
          headers[WEBHOOK_HEADERS.signature] = webhookSignature(
            keys,
            notification.eventId,
            timestamp,
            body,
          );
        }
        let response: Response;
        try {
          response = await doFetch(target, {
            method: "POST",
            headers,
            body,
            signal: controller.signal,
          });
        } catch (cause) {
          throw failed("failed", cause);
        }
        const requestId = response.headers.get("x-request-id");
        const receipt = requestId ? { providerId: requestId } : {};
        // Read the whole body (so the connection can be reused), within the same deadline.
        let text: string;
        try {
          text = await untilAborted(response.text(), controller.signal);
        } catch (cause) {
          void response.body?.cancel().catch(() => {});
          // A 2xx status is the receiver's acceptance: a body that stalls after it must not
          // make us send the notification again.
          if (response.ok) return receipt;
          throw failed(`answered ${response.status}, reading the body failed`, cause);
        }
        if (response.ok) return receipt;
        const status = response.status;
        const answered = `POST ${url.host} answered ${status}: ${text.slice(0, 200)}`;
        const setting = configSetting(status);
        if (setting) throw new ChannelConfigError("webhook", setting, answered, { status });
        const retriable = status === 408 || status === 429 || status >= 500;
        const after = retryAfterMs(response.headers.get("retry-after"));
        throw new ChannelError("webhook", answered, {
          retriable,
          status,
          ...(after === undefined ? {} : { retryAfterMs: after }),
        });
      } finally {
        clearTimeout(timer);
        signal.removeEventListener("abort", abort);
      }
    },
    async close() {},
  };
}
