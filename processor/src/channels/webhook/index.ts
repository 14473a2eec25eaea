/** The webhook channel as a plugin: WEBHOOK_* settings, and its factory. */
import { z } from "zod";
import { envBoolean, envPositiveInt, envUrl } from "../../../../core/env.ts";
import { ConfigError } from "../../../../core/errors.ts";
import type { ChannelPlugin } from "../channel.ts";
import { createWebhookChannel, parseWebhookSecrets, webhookUrlProblem } from "./webhook.ts";

/** The webhook channel's settings. */
export interface WebhookSettings {
  url?: string;
  timeoutMs: number;
  /** One or more `whsec_` secrets, as given (validated). */
  secret?: string;
  /** `http://` to hosts other than loopback is allowed. */
  allowHttp?: boolean;
}

/** The webhook plugin. */
export const webhookPlugin: ChannelPlugin<WebhookSettings> = {
  name: "webhook",
  env: {
    WEBHOOK_URL: envUrl().optional(),
    WEBHOOK_TIMEOUT_MS: envPositiveInt("WEBHOOK_TIMEOUT_MS", 5000, 120_000),
    WEBHOOK_SECRET: z
      .string()
      .superRefine((value, ctx) => {
        const { problem } = parseWebhookSecrets(value);
        if (problem) ctx.addIssue({ code: "custom", message: problem });
      })
      .optional(),
    WEBHOOK_ALLOW_HTTP: envBoolean(false),
  },
  check(raw, enabled) {
    const issues: string[] = [];
    if (enabled && !raw.WEBHOOK_URL) {
      issues.push("WEBHOOK_URL: is required when ENABLED_CHANNELS includes webhook");
    }
    // A URL that does not parse, or is not http(s), is the schema's to report.
    const url = raw.WEBHOOK_URL && URL.canParse(raw.WEBHOOK_URL) ? new URL(raw.WEBHOOK_URL) : null;
    if (url && (url.protocol === "http:" || url.protocol === "https:")) {
      const allowHttp = ["true", "1", "yes"].includes(raw.WEBHOOK_ALLOW_HTTP ?? "");
      const problem = webhookUrlProblem(url, allowHttp);
      if (problem) issues.push(`WEBHOOK_URL: ${problem}`);
    }
    return issues;
  },
  settings: (e) => ({
    timeoutMs: e.WEBHOOK_TIMEOUT_MS as number,
    ...(e.WEBHOOK_URL ? { url: e.WEBHOOK_URL as string } : {}),
    ...(e.WEBHOOK_SECRET ? { secret: e.WEBHOOK_SECRET as string } : {}),
    ...(e.WEBHOOK_ALLOW_HTTP ? { allowHttp: true } : {}),
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
      ...(s.allowHttp ? { allowHttp: true } : {}),
      ...(ctx.fetch ? { fetch: ctx.fetch } : {}),
    });
  },
};
