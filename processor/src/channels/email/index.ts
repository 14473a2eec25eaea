/** The email channel (Amazon SES v2) as a plugin: SES_* settings, route targets, and its factory. */
import { z } from "zod";
import { envUrl, splitList } from "../../../../core/env.ts";
import { ConfigError } from "../../../../core/errors.ts";
import type { ChannelPlugin } from "../channel.ts";
import { createEmailChannel, isEmailAddress } from "./email.ts";
import { loadEmailTemplates } from "./render.ts";

/** The email channel's settings (SES_*, EMAIL_TO, AWS_REGION). */
export interface EmailSettings {
  from?: string;
  defaultTo: string[];
  configurationSet?: string;
  region?: string;
  endpoint?: string;
  maxSendRate?: number;
}

/** The email plugin. AWS_REGION is read with the Kafka settings (core), shared with MSK IAM. */
export const emailPlugin: ChannelPlugin<EmailSettings> = {
  name: "email",
  env: {
    SES_FROM: z.string().optional(),
    EMAIL_TO: z.string().optional(),
    SES_CONFIGURATION_SET: z
      .string()
      .regex(/^[\w-]{1,64}$/, "expected a configuration set name")
      .optional(),
    SES_ENDPOINT: envUrl().optional(),
    SES_MAX_SEND_RATE: z.coerce
      .number({ error: "expected a number" })
      .positive("expected > 0")
      .optional(),
  },
  check(raw, enabled) {
    const issues: string[] = [];
    if (enabled) {
      if (!raw.SES_FROM) issues.push("SES_FROM: is required when ENABLED_CHANNELS includes email");
      if (!raw.AWS_REGION)
        issues.push("AWS_REGION: is required when ENABLED_CHANNELS includes email");
    }
    if (raw.SES_FROM && !isEmailAddress(raw.SES_FROM))
      issues.push("SES_FROM: expected an email address");
    for (const to of splitList(raw.EMAIL_TO ?? "")) {
      if (!isEmailAddress(to))
        issues.push(`EMAIL_TO: ${JSON.stringify(to)} is not an email address`);
    }
    return issues;
  },
  settings: (e) => ({
    defaultTo: splitList((e.EMAIL_TO as string | undefined) ?? ""),
    ...(e.SES_FROM ? { from: e.SES_FROM as string } : {}),
    ...(e.SES_CONFIGURATION_SET ? { configurationSet: e.SES_CONFIGURATION_SET as string } : {}),
    ...(e.AWS_REGION ? { region: e.AWS_REGION as string } : {}),
    ...(e.SES_ENDPOINT ? { endpoint: e.SES_ENDPOINT as string } : {}),
    ...(e.SES_MAX_SEND_RATE ? { maxSendRate: e.SES_MAX_SEND_RATE as number } : {}),
  }),
  checkTarget(target, where) {
    const to = target.to;
    if (to === undefined) return [];
    if (!Array.isArray(to) || to.length === 0)
      return [`routing ${where}.targets.email.to: expected a non-empty list of addresses`];
    return to
      .filter((a) => typeof a !== "string" || !isEmailAddress(a))
      .map(
        (a) => `routing ${where}.targets.email.to: ${JSON.stringify(a)} is not an email address`,
      );
  },
  create(s, ctx) {
    const issues: string[] = [];
    if (!s.from) issues.push("SES_FROM: is required when email is enabled");
    if (!s.region) issues.push("AWS_REGION: is required when email is enabled");
    if (issues.length > 0 || !s.from || !s.region) throw new ConfigError("channel email", issues);
    return createEmailChannel({
      from: s.from,
      region: s.region,
      templates: loadEmailTemplates(ctx.templatesDir),
      defaultTo: s.defaultTo,
      ...(ctx.onRateLimitWait ? { onRateLimitWait: ctx.onRateLimitWait } : {}),
      ...(ctx.rateLimiter ? { rateLimiter: ctx.rateLimiter } : {}),
      ...(s.configurationSet ? { configurationSet: s.configurationSet } : {}),
      ...(s.endpoint ? { endpoint: s.endpoint } : {}),
      ...(s.maxSendRate ? { maxSendRate: s.maxSendRate } : {}),
    });
  },
};
