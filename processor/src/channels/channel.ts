/**
 * The one interface every channel plugin implements, in a file of its own: plugins import this
 * and the message contract, never the registry that lists them (channels/index.ts).
 */
import type { z } from "zod";
import type { Notification } from "../../../core/contract.ts";
import type { Env } from "../../../core/env.ts";
import type { Logger } from "../../../core/log.ts";
import type { RateLimiterFactory } from "../rate-limit.ts";

// The toolkit a plugin may use besides core: how it reports a failed send, and the rate limiter
// providers' limits call for. Plugins import them from here, so the plugin boundary is this file.
export { ChannelConfigError, ChannelError, ChannelUnavailableError } from "../errors.ts";
export {
  createRateLimiter,
  localRateLimiter,
  type RateLimiter,
  type RateLimiterFactory,
} from "../rate-limit.ts";
export {
  asIs,
  checkPlaceholders,
  compileText,
  cut,
  DEFAULT_TEMPLATES_DIR,
  type Encode,
  templateFolder,
  type Values,
  valuesOf,
} from "../templates.ts";
export { escapeHtml, untilAborted } from "../text.ts";

/** What a provider returned for one delivery. */
export interface DeliveryReceipt {
  /** Provider's id of the delivered message (Slack ts, SES MessageId, HTTP request id). */
  providerId?: string;
}

/** What a send gets besides the notification. */
export interface SendContext {
  /** Aborted when the send must give up (hard shutdown). */
  signal: AbortSignal;
  /** This category's settings for the channel, from the routing rules (may be empty). */
  target: Record<string, unknown>;
}

/** One delivery channel. */
export interface Channel {
  readonly name: string;
  /**
   * Delivers one notification.
   * @throws ChannelError with `retriable` set by what the provider answered
   */
  send(notification: Notification, context: SendContext): Promise<DeliveryReceipt>;
  /**
   * Checks credentials and reads provider settings once at start-up (Slack auth.test, SES
   * GetAccount); a failure stops the processor with the reason.
   */
  connect?(): Promise<void>;
  /** Provider-specific state for /readyz and the status page (rates, waits). */
  status?(): Record<string, unknown>;
  /** Releases connections; called once at shutdown. */
  close(): Promise<void>;
}

/** What a channel plugin may use besides its own settings: shared services of the processor. */
export interface PluginContext {
  /** The template folder (TEMPLATES_DIR); unset: the processor's own templates. */
  templatesDir?: string;
  logger: Logger;
  /** HTTP client (global fetch by default); injected in tests. */
  fetch?: typeof fetch;
  /** Where the log channel writes lines (stdout by default). */
  write?: (line: string) => void;
  /** Told how long a send waited for its provider's rate limit. */
  onRateLimitWait?: (ms: number) => void;
  /**
   * Makes the limiter for each provider limit (default: local to this process). The processor
   * passes limiters shared by every pod through Redis, so pods together keep a provider's rate.
   */
  rateLimiter?: RateLimiterFactory;
  /** Told how many notifications each posted message carried (digests carry several). */
  onPosted?: (notifications: number) => void;
}

/**
 * A channel plugin: everything about one channel in one place. The processor's configuration
 * composes every plugin's environment shape (so each variable is validated once, by name), asks
 * the enabled plugins what they require, and the registry (./index.ts) only lists the plugins.
 */
export interface ChannelPlugin<S = unknown> {
  /** The name in ENABLED_CHANNELS. */
  readonly name: string;
  /** The environment variables it reads, as zod schemas by variable name. */
  readonly env: z.ZodRawShape;
  /**
   * Problems with the raw environment across its variables: what it requires when `enabled`,
   * and values that are wrong whether or not it is (each `NAME: problem`).
   */
  check(raw: Env, enabled: boolean): string[];
  /** Its settings, from the validated environment. */
  settings(env: Record<string, unknown>): S;
  /** Problems with one route's target for this channel (`where` names the route). */
  checkTarget?(target: Record<string, unknown>, where: string): string[];
  /** Creates the channel. */
  create(settings: S, context: PluginContext): Channel;
}
