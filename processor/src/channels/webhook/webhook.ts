/**
 * The `webhook` channel: a JSON POST of the notification to one URL.
 * 2xx is delivered; 408, 429 and 5xx and network errors are retriable; 401 and 403 (the
 * receiver refuses us) and 404 and 410 (nothing there any more) are configuration-class, the
 * channel is down until WEBHOOK_URL or WEBHOOK_SECRET is fixed; other 4xx are final for the
 * message.
 */
import { createHmac } from "node:crypto";
import type { Notification } from "../../../../core/contract.ts";
import { ConfigError } from "../../../../core/errors.ts";
import {
  type Channel,
  ChannelConfigError,
  ChannelError,
  type SendContext,
  untilAborted,
} from "../channel.ts";

/** Options of {@link createWebhookChannel}. */
export interface WebhookChannelOptions {
  /** Target URL, http or https. */
  url: string;
  /** Per-request timeout in ms (default 5000). */
  timeoutMs?: number;
  /** HTTP client (default global fetch). */
  fetch?: typeof fetch;
  /**
   * Shared secret: when set, each request carries `x-fanda-signature: t=<unix s>,v1=<hex>`,
   * the HMAC-SHA256 of `<t>.<body>`, so the receiver can check origin and freshness.
   */
  secret?: string;
}

/** The signature header value for `body` at `timestamp` (seconds). */
export function webhookSignature(secret: string, body: string, timestamp: number): string {
  const mac = createHmac("sha256", secret).update(`${timestamp}.${body}`).digest("hex");
  return `t=${timestamp},v1=${mac}`;
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
 * @throws ConfigError when the URL or timeout is invalid
 * @example
 * const webhook = createWebhookChannel({ url: "https://hooks.example.com/fanda" });
 */
export function createWebhookChannel(options: WebhookChannelOptions): Channel {
  const issues: string[] = [];
  let url: URL | undefined;
  try {
    url = new URL(options.url);
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      issues.push(`url: expected http or https, got ${url.protocol}`);
    }
  } catch {
    issues.push("url: not a valid URL");
  }
  const timeoutMs = options.timeoutMs ?? 5000;
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) {
    issues.push(`timeoutMs: expected a positive integer, got ${timeoutMs}`);
  }
  if (options.secret !== undefined && options.secret.length < 16) {
    issues.push("WEBHOOK_SECRET: expected at least 16 characters");
  }
  if (issues.length > 0 || !url) throw new ConfigError("channel webhook", issues);
  const target = url.toString();
  /** The setting a status says is wrong, for the statuses that refuse every message. */
  const configSetting = (status: number) => {
    if (status === 401 || status === 403) return options.secret ? "WEBHOOK_SECRET" : "WEBHOOK_URL";
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
        const headers: Record<string, string> = {
          "content-type": "application/json",
          "x-fanda-event-id": notification.eventId,
        };
        if (options.secret) {
          headers["x-fanda-signature"] = webhookSignature(
            options.secret,
            body,
            Math.floor(Date.now() / 1000),
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
