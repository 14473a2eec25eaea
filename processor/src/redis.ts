/**
 * The processor's Redis connections (the idempotency store, the shared provider limits): one
 * reading of REDIS_URL and one set of client settings, so both fail, reconnect and follow a
 * failover the same way.
 */
import { Redis, type RedisOptions } from "ioredis";
import { ConfigError } from "./errors.ts";

/**
 * ioredis' `reconnectOnError`: 2 (reconnect and resend the command) for READONLY, the answer
 * of a demoted primary; no reconnect for other errors.
 */
export const reconnectOnReadonly = (err: Error): 2 | false =>
  /\bREADONLY\b/.test(err.message) ? 2 : false;

/**
 * Connects to the Redis at `url` with the processor's client settings (`overrides` win).
 * Errors surface through commands; the client does not log them.
 * @param component what the connection is for, named in a ConfigError
 * @throws ConfigError for a URL that is not redis:// or rediss://
 */
export function connectRedis(component: string, url: string, overrides: RedisOptions = {}): Redis {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigError(component, ["REDIS_URL: not a valid URL"]);
  }
  if (parsed.protocol !== "redis:" && parsed.protocol !== "rediss:") {
    throw new ConfigError(component, ["REDIS_URL: expected redis:// or rediss://"]);
  }
  const redis = new Redis(url, {
    // Commands wait while (re)connecting, but fail after one reconnect attempt, so an
    // outage surfaces within a second and callers back off instead of piling up.
    enableOfflineQueue: true,
    maxRetriesPerRequest: 1,
    connectTimeout: 2000,
    // A black-holed Redis (no RST) must fail commands too, not hang them for minutes.
    commandTimeout: 5000,
    retryStrategy: (times) => Math.min(times * 200, 2000),
    // After a failover, connections left on the demoted primary answer every write with
    // READONLY while the endpoint already names the new primary: reconnect (to whatever the
    // endpoint resolves to now) and send the command again (2), instead of failing every
    // command until a restart. Scripts report it inside their error text.
    reconnectOnError: reconnectOnReadonly,
    ...overrides,
  });
  redis.on("error", () => {});
  return redis;
}
