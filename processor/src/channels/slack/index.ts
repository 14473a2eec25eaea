/** The Slack channel as a plugin: SLACK_* settings, route targets, and its factory. */
import { z } from "zod";
import { envBoolean, envPositiveInt } from "../../../../core/env.ts";
import { ConfigError } from "../../../../core/errors.ts";
import type { ChannelPlugin } from "../channel.ts";
import { loadSlackTemplates } from "./render.ts";
import { createSlackChannel } from "./slack.ts";

/** The Slack channel's settings (SLACK_*). */
export interface SlackSettings {
  token?: string;
  apiUrl?: string;
  defaultChannel?: string;
  ratePerSecond: number;
  burst: number;
  /** Longest 429 Retry-After waited in place, in ms; longer ones defer (default 30000). */
  retryAfterMaxMs: number;
  /** Post what queued for a Slack channel as one digest message (default true). */
  digest: boolean;
  digestMax: number;
}

/** The Slack plugin. */
export const slackPlugin: ChannelPlugin<SlackSettings> = {
  name: "slack",
  env: {
    SLACK_BOT_TOKEN: z
      .string()
      .regex(/^xox[a-z]-\S+$/, "expected a Slack bot token (xoxb-…)")
      .optional(),
    SLACK_API_URL: z
      .url({ protocol: /^https?$/, error: "expected an http(s) URL ending with /api/" })
      .refine((u) => u.endsWith("/"), "must end with / (e.g. https://slack.com/api/)")
      .optional(),
    SLACK_DEFAULT_CHANNEL: z
      .string()
      .regex(/^[#@]?[\w.-]{1,80}$/, "expected a channel name or id")
      .optional(),
    SLACK_RATE_PER_SECOND: z.coerce
      .number({ error: "expected a number" })
      .positive("expected > 0")
      .max(10_000, "expected at most 10000")
      .default(1),
    SLACK_BURST: envPositiveInt("SLACK_BURST", 3, 10_000),
    SLACK_RETRY_AFTER_MAX_MS: envPositiveInt("SLACK_RETRY_AFTER_MAX_MS", 30_000, 3_600_000),
    SLACK_DIGEST: envBoolean(true),
    SLACK_DIGEST_MAX: envPositiveInt("SLACK_DIGEST_MAX", 100, 1000).refine(
      (v) => v >= 2,
      "expected at least 2",
    ),
  },
  check: (raw, enabled) =>
    enabled && !raw.SLACK_BOT_TOKEN
      ? ["SLACK_BOT_TOKEN: is required when ENABLED_CHANNELS includes slack"]
      : [],
  settings: (e) => ({
    ratePerSecond: e.SLACK_RATE_PER_SECOND as number,
    burst: e.SLACK_BURST as number,
    retryAfterMaxMs: e.SLACK_RETRY_AFTER_MAX_MS as number,
    digest: e.SLACK_DIGEST as boolean,
    digestMax: e.SLACK_DIGEST_MAX as number,
    ...(e.SLACK_BOT_TOKEN ? { token: e.SLACK_BOT_TOKEN as string } : {}),
    ...(e.SLACK_API_URL ? { apiUrl: e.SLACK_API_URL as string } : {}),
    ...(e.SLACK_DEFAULT_CHANNEL ? { defaultChannel: e.SLACK_DEFAULT_CHANNEL as string } : {}),
  }),
  checkTarget(target, where) {
    const channel = target.channel;
    return channel !== undefined && (typeof channel !== "string" || channel.length === 0)
      ? [`routing ${where}.targets.slack.channel: expected a channel name`]
      : [];
  },
  create(s, ctx) {
    if (!s.token)
      throw new ConfigError("channel slack", [
        "SLACK_BOT_TOKEN: is required when slack is enabled",
      ]);
    return createSlackChannel({
      token: s.token,
      templates: loadSlackTemplates(ctx.templatesDir),
      ratePerSecond: s.ratePerSecond,
      burst: s.burst,
      retryAfterMaxMs: s.retryAfterMaxMs,
      digest: s.digest,
      digestMax: s.digestMax,
      ...(ctx.onPosted ? { onPosted: ctx.onPosted } : {}),
      ...(ctx.onRateLimitWait ? { onRateLimitWait: ctx.onRateLimitWait } : {}),
      ...(ctx.rateLimiter ? { rateLimiter: ctx.rateLimiter } : {}),
      ...(s.apiUrl ? { apiUrl: s.apiUrl } : {}),
      ...(s.defaultChannel ? { defaultChannel: s.defaultChannel } : {}),
    });
  },
};
