/**
 * Processor errors. The base taxonomy ({@link FandaError}: `retriable`, `operation`, `cause`)
 * is shared with the producer; these add what delivery needs to know.
 */
import { FandaError } from "../../core/errors.ts";

export {
  ConfigError,
  FandaError,
  InvalidInputError,
  toFandaError,
} from "../../core/errors.ts";

/** A channel could not deliver. `retriable` decides whether dispatch tries again. */
export class ChannelError extends FandaError {
  readonly channel: string;
  /** Provider status (HTTP status, Slack error code) when there is one. */
  readonly status?: number | string;
  /** How long the provider asked us to wait before trying again, in ms (429 Retry-After). */
  readonly retryAfterMs?: number;

  constructor(
    channel: string,
    message: string,
    options: {
      retriable: boolean;
      cause?: unknown;
      status?: number | string;
      retryAfterMs?: number;
    },
  ) {
    super(`channel ${channel}`, message, options);
    this.channel = channel;
    if (options.status !== undefined) this.status = options.status;
    if (options.retryAfterMs !== undefined) this.retryAfterMs = options.retryAfterMs;
  }
}

/**
 * The channel cannot take any message for a while, and no retry within this message can wait
 * that out (Slack asked for a pause longer than SLACK_RETRY_AFTER_MAX_MS): the dispatcher
 * defers at once (the partition pauses, the message comes back later), never sleeps that
 * long and never dead-letters. Retriable: the same send can succeed later.
 */
export class ChannelUnavailableError extends ChannelError {
  constructor(
    channel: string,
    message: string,
    options: { cause?: unknown; status?: number | string; retryAfterMs?: number } = {},
  ) {
    super(channel, message, { ...options, retriable: true });
  }
}

/**
 * A configuration-class failure: the provider refuses every message because of how the
 * channel is set up (a revoked token, a Slack channel the bot is not in, SES sending paused,
 * a webhook URL that answers 401 or 404). Not the message's fault, so it is not dead-lettered:
 * the dispatcher marks the channel down (breaker open, `misconfigured` in its health, the
 * fanda_channel_misconfigured gauge) and defers until the operator fixes `setting`.
 */
export class ChannelConfigError extends ChannelUnavailableError {
  /** What to fix, as the operator knows it (an environment variable, a routing target, IAM). */
  readonly setting: string;

  constructor(
    channel: string,
    setting: string,
    message: string,
    options: { cause?: unknown; status?: number | string } = {},
  ) {
    super(channel, `${message} (check ${setting})`, options);
    this.setting = setting;
  }
}

/**
 * The calls to a backing store (Redis, MySQL, SQLite), remembering whether the last one
 * reached it, for readiness: `run` turns a failure into `toError(operation, cause)`.
 * @param initiallyHealthy before the first call (a network store is not, until it answers)
 */
export function createHealthGate(
  toError: (operation: string, cause: unknown) => FandaError,
  initiallyHealthy: boolean,
) {
  let healthy = initiallyHealthy;
  return {
    healthy: () => healthy,
    /** For connection events that tell before any call does (Redis `ready`, `close`). */
    set(value: boolean) {
      healthy = value;
    },
    async run<T>(operation: string, fn: () => T | Promise<T>): Promise<T> {
      try {
        const result = await fn();
        healthy = true;
        return result;
      } catch (cause) {
        healthy = false;
        throw toError(operation, cause);
      }
    },
  };
}
