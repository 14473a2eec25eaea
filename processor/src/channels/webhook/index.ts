/** The webhook channel as a plugin: WEBHOOK_* settings, and its factory. */
import { z } from "zod";
import { envPositiveInt, envUrl } from "../../../../core/env.ts";
import { ConfigError } from "../../../../core/errors.ts";
import type { ChannelPlugin } from "../channel.ts";
import { createWebhookChannel } from "./webhook.ts";

/** The webhook channel's settings. */
export interface WebhookSettings {
  url?: string;
  timeoutMs: number;
  secret?: string;
}

/** The webhook plugin. */
export const webhookPlugin: ChannelPlugin<WebhookSettings> = {
  name: "webhook",
  env: {
    WEBHOOK_URL: envUrl().optional(),
    WEBHOOK_TIMEOUT_MS: envPositiveInt("WEBHOOK_TIMEOUT_MS", 5000, 120_000),
    WEBHOOK_SECRET: z.string().min(16, "expected at least 16 characters").optional(),
  },
  check: (raw, enabled) =>
    enabled && !raw.WEBHOOK_URL
      ? ["WEBHOOK_URL: is required when ENABLED_CHANNELS includes webhook"]
      : [],
  settings: (e) => ({
    timeoutMs: e.WEBHOOK_TIMEOUT_MS as number,
    ...(e.WEBHOOK_URL ? { url: e.WEBHOOK_URL as string } : {}),
    ...(e.WEBHOOK_SECRET ? { secret: e.WEBHOOK_SECRET as string } : {}),
  }),
  create(s, ctx) {
    if (!s.url)
      throw new ConfigError("channel webhook", [
        "WEBHOOK_URL: is required when webhook is enabled",
      ]);
    return createWebhookChannel({
      url: s.url,
      timeoutMs: s.timeoutMs,
      ...(s.secret ? { secret: s.secret } : {}),
      ...(ctx.fetch ? { fetch: ctx.fetch } : {}),
    });
  },
};
