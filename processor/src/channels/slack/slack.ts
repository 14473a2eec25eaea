/**
 * The `slack` channel: `chat.postMessage` (@slack/web-api) with Block Kit from the category's
 * template and a plain-text fallback, to the Slack channel the route names.
 *
 * Limits: a token bucket per Slack channel keeps under Slack's ~1 message/s (with short
 * bursts); a 429 blocks that channel's bucket for its Retry-After and comes back as a
 * retriable error, so the dispatcher waits and tries again — nothing is dropped or hammered.
 * A Retry-After longer than `retryAfterMaxMs` is not waited in place (it would hold the
 * partition): that Slack channel is held until then, and its sends are deferred
 * (ChannelUnavailableError) without asking Slack again, so the consumer pauses and comes back.
 * The WebClient's own retries are off: one attempt per call, so a retry is always ours and
 * never a hidden double post. `ok:false` codes are sorted into retriable, final (this message)
 * and configuration-class (a revoked token, a channel the bot is not in: the channel is down).
 *
 * Digest mode (default): notifications for one Slack channel queue behind its bucket, and
 * whatever has queued by the time a message may go is posted as one digest (up to
 * `digestMax`); a lone notification still gets its own message. At ~1 message/s per channel
 * this is what lets a burst of hundreds of uploads per second reach Slack in seconds instead
 * of holding every other channel's deliveries behind Slack's limit. Each notification's send
 * settles with the digest's outcome (its `ts` is the receipt; a failure fails each of them,
 * and the dispatcher retries each as usual).
 */
import {
  type ChatPostMessageArguments,
  LogLevel,
  WebAPIHTTPError,
  WebAPIPlatformError,
  WebAPIRateLimitedError,
  WebAPIRequestError,
  WebClient,
} from "@slack/web-api";
import type { Notification } from "../../../../core/contract.ts";
import { ConfigError } from "../../../../core/errors.ts";
import { traceIdOf } from "../../../../core/tracing.ts";
import {
  type Channel,
  ChannelConfigError,
  ChannelError,
  ChannelUnavailableError,
  localRateLimiter,
  type RateLimiter,
  type RateLimiterFactory,
  type SendContext,
  untilAborted,
} from "../channel.ts";
import type { SlackTemplates } from "./render.ts";

/** `ok:false` codes worth another try; every other code is final (retrying cannot fix it). */
export const SLACK_RETRIABLE_ERRORS = new Set([
  "ratelimited",
  "rate_limited",
  "service_unavailable",
  "internal_error",
  "fatal_error",
  "request_timeout",
  "team_added_to_org",
]);

/**
 * `ok:false` codes that mean the channel is set up wrong, not that one message is: each fails
 * every message until the operator fixes the setting they name, so they are configuration-class
 * (ChannelConfigError: the channel is down and deferred, nothing is dead-lettered).
 */
export const SLACK_TOKEN_ERRORS = new Set([
  "invalid_auth",
  "not_authed",
  "account_inactive",
  "token_revoked",
  "token_expired",
  "no_permission",
  "missing_scope",
  "not_allowed_token_type",
  "ekm_access_denied",
  "org_login_required",
  "team_access_not_granted",
  "access_denied",
]);
/** `ok:false` codes about the Slack channel posted to (see {@link SLACK_TOKEN_ERRORS}). */
export const SLACK_CHANNEL_ERRORS = new Set([
  "channel_not_found",
  "not_in_channel",
  "is_archived",
  "restricted_action",
  "restricted_action_read_only_channel",
  "restricted_action_thread_only_channel",
  "restricted_action_non_threadable_channel",
]);

/**
 * `metadata.event_type` of every message the channel posts; `event_payload` holds `count`,
 * `event_ids` (comma-separated) of the notifications it carries and, when they were traced,
 * `trace_ids` (their W3C trace ids, comma-separated in the same order).
 */
export const SLACK_METADATA_EVENT = "fanda_notifications";

/** The part of WebClient the channel uses; injected in tests. */
export interface SlackApi {
  chat: {
    postMessage(
      args: ChatPostMessageArguments,
    ): Promise<{ ok?: boolean; ts?: string; channel?: string }>;
  };
  auth: { test(): Promise<{ ok?: boolean; team?: string; user?: string }> };
}

/** Options of {@link createSlackChannel}. */
export interface SlackChannelOptions {
  /** Bot token (xoxb-…). A secret: never logged. */
  token: string;
  templates: SlackTemplates;
  /** Slack channel when the route names none (e.g. `#uploads`). */
  defaultChannel?: string;
  /** Web API base URL (default Slack's); the tests point it at scripts/slack-server.ts. */
  apiUrl?: string;
  /** Messages per second per Slack channel (default 1) and burst (default 3). */
  ratePerSecond?: number;
  burst?: number;
  /** Per-call timeout in ms (default 10000). */
  timeoutMs?: number;
  /**
   * Longest 429 Retry-After waited in place, in ms (default 30000); a longer one defers the
   * Slack channel's sends until it is over (SLACK_RETRY_AFTER_MAX_MS).
   */
  retryAfterMaxMs?: number;
  /** Monotonic clock in ms for the holds (default performance.now); injected in tests. */
  now?: () => number;
  /** The Web API client (default: a WebClient built from the options above). */
  client?: SlackApi;
  /** Told how long a send waited for the rate limit, in ms. */
  onRateLimitWait?: (ms: number) => void;
  /**
   * Makes each Slack channel's limiter, keyed `slack:<channel>` (default: local to this
   * process); the processor's is shared by every pod through Redis.
   */
  rateLimiter?: RateLimiterFactory;
  /** Digest mode (default true): see the module comment. */
  digest?: boolean;
  /** Most notifications in one digest (default 100). */
  digestMax?: number;
  /** Told how many notifications each posted message carried. */
  onPosted?: (notifications: number) => void;
}

/** A notification waiting for its Slack channel's next message. */
interface Queued {
  notification: Notification;
  /** The W3C trace id the send ran in, for the message metadata. */
  traceId: string | undefined;
  signal: AbortSignal;
  resolve: (receipt: { providerId?: string }) => void;
  reject: (err: unknown) => void;
}

/**
 * Sorts what the Web API threw. `channelSetting` is where the Slack channel came from
 * (SLACK_DEFAULT_CHANNEL or a routing target), named when Slack refuses the channel.
 */
function classify(err: unknown, slackChannel: string, channelSetting: string): ChannelError {
  if (err instanceof WebAPIRateLimitedError) {
    return new ChannelError("slack", `rate limited posting to ${slackChannel}`, {
      retriable: true,
      status: 429,
      retryAfterMs: err.retryAfter * 1000,
      cause: err,
    });
  }
  if (err instanceof WebAPIPlatformError) {
    const code = err.data.error;
    const setting = SLACK_TOKEN_ERRORS.has(code)
      ? "SLACK_BOT_TOKEN"
      : SLACK_CHANNEL_ERRORS.has(code)
        ? channelSetting
        : undefined;
    if (setting) {
      return new ChannelConfigError(
        "slack",
        setting,
        `chat.postMessage to ${slackChannel}: ${code}`,
        { status: code, cause: err },
      );
    }
    return new ChannelError("slack", `chat.postMessage to ${slackChannel}: ${code}`, {
      retriable: SLACK_RETRIABLE_ERRORS.has(code),
      status: code,
      cause: err,
    });
  }
  if (err instanceof WebAPIHTTPError) {
    const retriable = err.statusCode >= 500 || err.statusCode === 408;
    return new ChannelError("slack", `chat.postMessage answered HTTP ${err.statusCode}`, {
      retriable,
      status: err.statusCode,
      cause: err,
    });
  }
  if (err instanceof WebAPIRequestError) {
    return new ChannelError("slack", `request failed: ${err.original.message}`, {
      retriable: true,
      cause: err,
    });
  }
  return new ChannelError("slack", `chat.postMessage failed: ${(err as Error).message}`, {
    retriable: true,
    cause: err,
  });
}

/**
 * Creates the Slack channel.
 * @throws ConfigError for an empty token, a bad API URL or bad rate settings
 * @example
 * const slack = createSlackChannel({ token, templates, defaultChannel: "#uploads" });
 */
export function createSlackChannel(options: SlackChannelOptions): Channel {
  const issues: string[] = [];
  if (!options.client && !/^xox[a-z]-\S+$/.test(options.token)) {
    issues.push("SLACK_BOT_TOKEN: expected a Slack token (xoxb-…)");
  }
  if (options.apiUrl !== undefined) {
    try {
      const u = new URL(options.apiUrl);
      if (!u.pathname.endsWith("/"))
        issues.push("SLACK_API_URL: must end with / (e.g. https://slack.com/api/)");
    } catch {
      issues.push("SLACK_API_URL: not a valid URL");
    }
  }
  const rate = options.ratePerSecond ?? 1;
  const burst = options.burst ?? 3;
  if (!(rate > 0)) issues.push("SLACK_RATE_PER_SECOND: expected > 0");
  if (!Number.isInteger(burst) || burst < 1) issues.push("SLACK_BURST: expected an integer >= 1");
  const retryAfterMax = options.retryAfterMaxMs ?? 30_000;
  if (!Number.isInteger(retryAfterMax) || retryAfterMax < 1) {
    issues.push("SLACK_RETRY_AFTER_MAX_MS: expected a whole number of ms >= 1");
  }
  const now = options.now ?? (() => performance.now());
  const digest = options.digest ?? true;
  const digestMax = options.digestMax ?? 100;
  if (!Number.isInteger(digestMax) || digestMax < 2 || digestMax > 1000) {
    issues.push("SLACK_DIGEST_MAX: expected an integer from 2 to 1000");
  }
  if (issues.length > 0) throw new ConfigError("channel slack", issues);

  const client: SlackApi =
    options.client ??
    new WebClient(options.token, {
      ...(options.apiUrl ? { slackApiUrl: options.apiUrl } : {}),
      // One attempt per call: retries belong to the dispatcher, which knows what was sent.
      retryConfig: { retries: 0 },
      rejectRateLimitedCalls: true,
      timeout: options.timeoutMs ?? 10_000,
      logLevel: LogLevel.ERROR,
    });
  const buckets = new Map<string, RateLimiter>();
  const bucket = (slackChannel: string) => {
    let b = buckets.get(slackChannel);
    if (!b) {
      b = (options.rateLimiter ?? localRateLimiter)(`slack:${slackChannel}`, {
        rate,
        burst,
        ...(options.onRateLimitWait ? { onWait: options.onRateLimitWait } : {}),
      });
      buckets.set(slackChannel, b);
    }
    return b;
  };

  /** Which setting named a Slack channel, for the operator told to fix it. */
  const channelSetting = (slackChannel: string) =>
    slackChannel === options.defaultChannel
      ? "SLACK_DEFAULT_CHANNEL"
      : "routing targets.slack.channel";

  // Slack channels whose Retry-After exceeded the cap, with when (monotonic ms) it is over.
  const holds = new Map<string, number>();
  /** The deferral for a held Slack channel, or undefined when it may post. */
  const held = (slackChannel: string) => {
    const until = holds.get(slackChannel);
    if (until === undefined) return undefined;
    const left = until - now();
    if (left <= 0) {
      holds.delete(slackChannel);
      return undefined;
    }
    return new ChannelUnavailableError(
      "slack",
      `Slack asked not to post to ${slackChannel} for another ${Math.ceil(left / 1000)} s (over SLACK_RETRY_AFTER_MAX_MS)`,
      { status: 429, retryAfterMs: left },
    );
  };

  const post = async (
    slackChannel: string,
    message: { text: string; blocks: unknown[] },
    notifications: readonly Notification[],
    traceIds: readonly (string | undefined)[],
  ) => {
    try {
      const res = await client.chat.postMessage({
        channel: slackChannel,
        text: message.text,
        blocks: message.blocks,
        unfurl_links: false,
        unfurl_media: false,
        // Message metadata: which events this message carries, for other apps (and audits)
        // to match a Slack message to the delivery log without parsing text.
        metadata: {
          event_type: SLACK_METADATA_EVENT,
          event_payload: {
            count: notifications.length,
            event_ids: notifications.map((n) => n.eventId).join(","),
            ...(traceIds.some((t) => t !== undefined)
              ? { trace_ids: traceIds.map((t) => t ?? "").join(",") }
              : {}),
          },
        },
      } as unknown as ChatPostMessageArguments);
      return res.ts ? { providerId: `${res.channel ?? slackChannel}/${res.ts}` } : {};
    } catch (err) {
      const error = classify(err, slackChannel, channelSetting(slackChannel));
      if (error.retryAfterMs === undefined) throw error;
      if (error.retryAfterMs <= retryAfterMax) {
        bucket(slackChannel).block(error.retryAfterMs);
        throw error;
      }
      holds.set(slackChannel, now() + error.retryAfterMs);
      throw held(slackChannel) ?? error;
    }
  };

  /** A message that cannot be rendered fails finally: no retry can fix the notification. */
  const render = (notifications: readonly Notification[]) => {
    try {
      return notifications.length === 1
        ? options.templates.slack(notifications[0] as Notification)
        : options.templates.slackDigest(notifications);
    } catch (cause) {
      throw new ChannelError("slack", `cannot render the message: ${(cause as Error).message}`, {
        retriable: false,
        cause,
      });
    }
  };
  /** Renders a batch; notifications that cannot be rendered are failed and left out. */
  const renderBatch = (batch: Queued[]) => {
    try {
      return { batch, message: render(batch.map((q) => q.notification)) };
    } catch {
      const good = batch.filter((q) => {
        try {
          render([q.notification]);
          return true;
        } catch (err) {
          q.reject(err);
          return false;
        }
      });
      if (good.length === 0) return undefined;
      try {
        return { batch: good, message: render(good.map((q) => q.notification)) };
      } catch (err) {
        for (const q of good) q.reject(err);
        return undefined;
      }
    }
  };
  const queues = new Map<string, Queued[]>();
  const pumping = new Set<string>();
  /** Drops queued sends whose signal aborted (shutdown), rejecting them with its reason. */
  const dropAborted = (queue: Queued[]) => {
    for (let i = queue.length - 1; i >= 0; i--) {
      const q = queue[i] as Queued;
      if (q.signal.aborted) {
        queue.splice(i, 1);
        q.reject(q.signal.reason);
      }
    }
  };
  /** One loop per Slack channel: wait for the bucket, post what has queued, repeat. */
  const pump = async (slackChannel: string, queue: Queued[]) => {
    if (pumping.has(slackChannel)) return;
    pumping.add(slackChannel);
    /** Defers everything queued while the Slack channel is held; true when it was. */
    const deferredAll = () => {
      const hold = held(slackChannel);
      if (hold) for (const q of queue.splice(0)) q.reject(hold);
      return hold !== undefined;
    };
    try {
      while (queue.length > 0) {
        const head = queue[0] as Queued;
        // A held channel takes no slot from the schedule every pod shares.
        if (deferredAll()) continue;
        try {
          await bucket(slackChannel).take(head.signal);
        } catch (err) {
          // Aborted (shutdown) or the limiter failed: either way the head cannot wait on.
          if (!head.signal.aborted && queue[0] === head) queue.shift()?.reject(err);
          dropAborted(queue);
          continue;
        }
        dropAborted(queue);
        // Slack may have asked for a hold while this one waited for its slot.
        if (deferredAll()) continue;
        const rendered = renderBatch(queue.splice(0, digestMax));
        if (!rendered) continue;
        const { batch, message } = rendered;
        let receipt: { providerId?: string };
        try {
          receipt = await post(
            slackChannel,
            message,
            batch.map((q) => q.notification),
            batch.map((q) => q.traceId),
          );
        } catch (err) {
          for (const q of batch) q.reject(err);
          continue;
        }
        for (const q of batch) q.resolve(receipt);
        try {
          options.onPosted?.(batch.length);
        } catch {
          // A metrics callback must not turn a delivered message into a failed one.
        }
      }
    } finally {
      pumping.delete(slackChannel);
      if (queue.length === 0 && queues.get(slackChannel) === queue) queues.delete(slackChannel);
    }
  };

  return {
    name: "slack",
    async connect() {
      try {
        await client.auth.test();
      } catch (err) {
        throw classify(err, "auth.test", "SLACK_BOT_TOKEN");
      }
    },
    async send(notification: Notification, { signal, target }: SendContext) {
      const slackChannel =
        typeof target.channel === "string" ? target.channel : options.defaultChannel;
      if (!slackChannel) {
        throw new ChannelConfigError(
          "slack",
          "SLACK_DEFAULT_CHANNEL",
          `no Slack channel for category ${notification.category}: set SLACK_DEFAULT_CHANNEL or a routing target`,
        );
      }
      const hold = held(slackChannel);
      if (hold) throw hold;
      if (!digest) {
        const message = render([notification]);
        await bucket(slackChannel).take(signal);
        // The Web API client takes no signal: a shutdown stops waiting on a silent Slack.
        const receipt = await untilAborted(
          post(slackChannel, message, [notification], [traceIdOf()]),
          signal,
        );
        options.onPosted?.(1);
        return receipt;
      }
      if (signal.aborted) throw signal.reason;
      // Queued or in a digest in flight, a shutdown ends this send's wait at once.
      return untilAborted(
        new Promise((resolve, reject) => {
          const queue = queues.get(slackChannel) ?? [];
          queues.set(slackChannel, queue);
          queue.push({ notification, traceId: traceIdOf(), signal, resolve, reject });
          pump(slackChannel, queue).catch((err) => {
            // Not expected (the loop catches what it awaits); never leave a send unsettled.
            for (const q of queue.splice(0)) q.reject(err);
          });
        }),
        signal,
      );
    },
    status: () => ({
      ratePerSecond: rate,
      burst,
      digest: digest ? { max: digestMax } : false,
      queued: Object.fromEntries([...queues].map(([name, q]) => [name, q.length])),
      waiting: Object.fromEntries(
        [...buckets]
          .filter(([, b]) => b.waitMs() > 0)
          .map(([name, b]) => [name, Math.round(b.waitMs())]),
      ),
      // Slack channels whose sends are deferred until Slack's long Retry-After is over (ms left).
      held: Object.fromEntries(
        [...holds]
          .filter(([name]) => held(name) !== undefined)
          .map(([name, until]) => [name, Math.round(until - now())]),
      ),
    }),
    async close() {},
  };
}
