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
