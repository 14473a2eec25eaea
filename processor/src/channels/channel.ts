/**
 * The one interface every channel plugin implements, in a file of its own: plugins import this
 * and the message contract, never the registry that lists them (channels/index.ts).
 */
import type { Notification } from "../../../core/contract.ts";

// The toolkit a plugin may use besides core: how it reports a failed send, and the rate limiter
// providers' limits call for. Plugins import them from here, so the plugin boundary is this file.
export { ChannelError } from "../errors.ts";
export { createRateLimiter, type RateLimiter } from "../rate-limit.ts";

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
