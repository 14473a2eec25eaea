/**
 * Channels are plugins behind one interface, listed in one explicit registry.
 * A channel (./channel.ts) turns a notification into one delivery at one provider and says, by
 * throwing a {@link ChannelError}, whether a failure is worth retrying.
 */
import type { Logger } from "../../../core/log.ts";
import { ConfigError } from "../errors.ts";
import { loadTemplates, type Templates } from "../templates.ts";
import type { Channel } from "./channel.ts";
import { createEmailChannel } from "./email.ts";
import { createLogChannel } from "./log.ts";
import { createSlackChannel } from "./slack.ts";
import { createWebhookChannel } from "./webhook.ts";

export type { Channel, DeliveryReceipt, SendContext } from "./channel.ts";

/** The processor's Slack settings (SLACK_*). */
export interface SlackSettings {
  token?: string;
  apiUrl?: string;
  defaultChannel?: string;
  ratePerSecond: number;
  burst: number;
  /** Post what queued for a Slack channel as one digest message (default true). */
  digest?: boolean;
  digestMax?: number;
}

/** The processor's email settings (SES_*, EMAIL_TO, AWS_REGION). */
export interface EmailSettings {
  from?: string;
  defaultTo: string[];
  configurationSet?: string;
  region?: string;
  endpoint?: string;
  maxSendRate?: number;
}

/** What a channel factory may read: the processor's settings for it, and shared services. */
export interface ChannelContext {
  env: {
    webhookUrl?: string;
    webhookTimeoutMs: number;
    webhookSecret?: string;
    slack?: SlackSettings;
    email?: EmailSettings;
  };
  /** Message templates (Slack and email). */
  templates?: Templates;
  logger: Logger;
  /** HTTP client (global fetch by default); injected in tests. */
  fetch?: typeof fetch;
  /** Where the log channel writes lines (stdout by default). */
  write?: (line: string) => void;
  /** Told how long a channel's send waited for its provider's rate limit. */
  onRateLimitWait?: (channel: string, ms: number) => void;
  /** Told how many notifications each posted Slack message carried (digests carry several). */
  onSlackPosted?: (notifications: number) => void;
}

/** The registry: every channel the processor knows, by the name used in ENABLED_CHANNELS. */
export const CHANNELS = {
  log: (ctx: ChannelContext): Channel => createLogChannel(ctx.write ? { write: ctx.write } : {}),
  webhook: (ctx: ChannelContext): Channel => {
    if (!ctx.env.webhookUrl) {
      throw new ConfigError("channel webhook", [
        "WEBHOOK_URL: is required when webhook is enabled",
      ]);
    }
    return createWebhookChannel({
      url: ctx.env.webhookUrl,
      timeoutMs: ctx.env.webhookTimeoutMs,
      ...(ctx.env.webhookSecret ? { secret: ctx.env.webhookSecret } : {}),
      ...(ctx.fetch ? { fetch: ctx.fetch } : {}),
    });
  },
  slack: (ctx: ChannelContext): Channel => {
    const s = ctx.env.slack;
    if (!s?.token)
      throw new ConfigError("channel slack", [
        "SLACK_BOT_TOKEN: is required when slack is enabled",
      ]);
    return createSlackChannel({
      token: s.token,
      templates: ctx.templates ?? loadTemplates(),
      ratePerSecond: s.ratePerSecond,
      burst: s.burst,
      ...(s.digest === undefined ? {} : { digest: s.digest }),
      ...(s.digestMax === undefined ? {} : { digestMax: s.digestMax }),
      ...(ctx.onSlackPosted ? { onPosted: ctx.onSlackPosted } : {}),
      ...(ctx.onRateLimitWait
        ? { onRateLimitWait: (ms: number) => ctx.onRateLimitWait?.("slack", ms) }
        : {}),
      ...(s.apiUrl ? { apiUrl: s.apiUrl } : {}),
      ...(s.defaultChannel ? { defaultChannel: s.defaultChannel } : {}),
    });
  },
  email: (ctx: ChannelContext): Channel => {
    const e = ctx.env.email;
    const issues: string[] = [];
    if (!e?.from) issues.push("SES_FROM: is required when email is enabled");
    if (!e?.region) issues.push("AWS_REGION: is required when email is enabled");
    if (issues.length > 0 || !e?.from || !e.region) throw new ConfigError("channel email", issues);
    return createEmailChannel({
      from: e.from,
      region: e.region,
      templates: ctx.templates ?? loadTemplates(),
      defaultTo: e.defaultTo,
      ...(ctx.onRateLimitWait
        ? { onRateLimitWait: (ms: number) => ctx.onRateLimitWait?.("email", ms) }
        : {}),
      ...(e.configurationSet ? { configurationSet: e.configurationSet } : {}),
      ...(e.endpoint ? { endpoint: e.endpoint } : {}),
      ...(e.maxSendRate ? { maxSendRate: e.maxSendRate } : {}),
    });
  },
} as const satisfies Record<string, (ctx: ChannelContext) => Channel>;

/** A channel name the registry knows. */
export type ChannelName = keyof typeof CHANNELS;

/** Every registered channel name. */
export const CHANNEL_NAMES = Object.keys(CHANNELS) as ChannelName[];

/** Creates the enabled channels, in the given order. */
export function createChannels(names: readonly ChannelName[], ctx: ChannelContext): Channel[] {
  return names.map((name) => CHANNELS[name](ctx));
}
