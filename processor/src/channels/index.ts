/**
 * The channel registry: every channel plugin the processor knows, by the name used in
 * ENABLED_CHANNELS, and nothing else. Each plugin (./<name>/index.ts) owns its settings, its
 * route targets and its factory; the interface is in ./channel.ts.
 */
import type { Logger } from "../../../core/log.ts";
import type { Channel, ChannelPlugin, RateLimiterFactory } from "./channel.ts";
import { type EmailSettings, emailPlugin } from "./email/index.ts";
import { logPlugin } from "./log/index.ts";
import { type SlackSettings, slackPlugin } from "./slack/index.ts";
import { type WebhookSettings, webhookPlugin } from "./webhook/index.ts";

export type { Channel, DeliveryReceipt, SendContext } from "./channel.ts";
export type { EmailSettings, SlackSettings, WebhookSettings };

/** The registry, in the order the names are listed. */
export const CHANNEL_PLUGINS = {
  log: logPlugin,
  webhook: webhookPlugin,
  slack: slackPlugin,
  email: emailPlugin,
} as const;

/** A channel name the registry knows. */
export type ChannelName = keyof typeof CHANNEL_PLUGINS;

/** Every registered channel name. */
export const CHANNEL_NAMES = Object.keys(CHANNEL_PLUGINS) as ChannelName[];

/** Each channel's settings, as its plugin read them (see ProcessorConfig.channelSettings). */
export type ChannelSettings = {
  [N in ChannelName]?: (typeof CHANNEL_PLUGINS)[N] extends ChannelPlugin<infer S> ? S : never;
};

/** What creating the channels needs besides their settings. */
export interface ChannelContext {
  /** The template folder (TEMPLATES_DIR); unset: the processor's own templates. */
  templatesDir?: string;
  logger: Logger;
  fetch?: typeof fetch;
  write?: (line: string) => void;
  /** Told how long a channel's send waited for its provider's rate limit. */
  onRateLimitWait?: (channel: string, ms: number) => void;
  /** Told how many notifications each posted Slack message carried (digests carry several). */
  onSlackPosted?: (notifications: number) => void;
  /** Makes the provider limiters (default: local to this process); see PluginContext. */
  rateLimiter?: RateLimiterFactory;
}

/** Creates the enabled channels, in the given order, from their plugins' settings. */
export function createChannels(
  names: readonly ChannelName[],
  settings: ChannelSettings,
  ctx: ChannelContext,
): Channel[] {
  return names.map((name) => {
    const plugin = CHANNEL_PLUGINS[name] as ChannelPlugin<unknown>;
    return plugin.create(settings[name] ?? plugin.settings({}), {
      ...(ctx.templatesDir ? { templatesDir: ctx.templatesDir } : {}),
      logger: ctx.logger,
      ...(ctx.fetch ? { fetch: ctx.fetch } : {}),
      ...(ctx.write ? { write: ctx.write } : {}),
      ...(ctx.onRateLimitWait
        ? { onRateLimitWait: (ms: number) => ctx.onRateLimitWait?.(name, ms) }
        : {}),
      ...(name === "slack" && ctx.onSlackPosted ? { onPosted: ctx.onSlackPosted } : {}),
      ...(ctx.rateLimiter ? { rateLimiter: ctx.rateLimiter } : {}),
    });
  });
}
