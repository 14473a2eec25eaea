/**
 * Provider limits shared by every pod: the same GCRA schedule as rate-limit.ts, with its one
 * number (the theoretical arrival time of the next send) kept in Redis and advanced by a
 * script, so N pods together send at Slack's per-channel rate or the SES account's send rate,
 * not N times it. Each take is one round trip that reserves the caller's slot and says how long
 * to wait for it; the wait itself happens here, as with the local limiter. The script reads
 * Redis' own clock, so pods' clocks need not agree.
 *
 * A pod holds at most `burst` reservations of a limit at a time (its other takers wait here,
 * without a slot): a reservation nobody uses (its taker aborted at shutdown, its pod killed)
 * idles every pod until its time, so what one pod can leave unused stays a burst's worth.
 *
 * When Redis cannot answer, a take falls back to a limiter local to this pod (the provider may
 * then see up to pods × the rate, and answers 429s the channels already handle), and Redis is
 * asked again after a second: pacing never stops deliveries that the idempotency store, on the
 * same Redis, would let through.
 */
import type { Redis } from "ioredis";
import { createRateLimiter, type RateLimiterFactory } from "./rate-limit.ts";
import { connectRedis } from "./redis.ts";
import { abortableSleep } from "./text.ts";

// KEYS[1] the limit's key. ARGV: interval ms, tolerance ms (burst - 1 intervals), block ms
// (> 0: nobody sends for that long; 0: take a slot), now ms (< 0: Redis' TIME).
// Returns how long the taker waits for its slot, in ms, as a string (replies drop fractions).
const LIMIT_LUA = `
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local blockMs = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
if now < 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
end
local tat = tonumber(redis.call('GET', KEYS[1])) or 0
local wait = 0
if blockMs > 0 then
  tat = math.max(tat, now + blockMs + tolerance)
else
  local start = math.max(tat, now)
  wait = start - tolerance - now
  tat = start + interval
end
redis.call('SET', KEYS[1], string.format('%.3f', tat), 'PX', math.ceil(tat - now) + 60000)
return string.format('%.3f', math.max(wait, 0))
`;

type LimitRedis = Redis & {
  fandaLimit(
    key: string,
    interval: number,
    tolerance: number,
    block: number,
    now: number,
  ): Promise<string>;
};

/** Options of {@link createRedisRateLimits}. */
export interface RedisRateLimitsOptions {
  /** redis:// or rediss:// URL (REDIS_URL: the idempotency store's Redis). */
  url: string;
  /** Key prefix (default `fanda:rate:`). */
  prefix?: string;
  /** The schedule's clock in ms (default: Redis' TIME); injected in tests. */
  now?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Told when a limit falls back to this pod alone because Redis failed, and why. */
  onFallback?: (key: string, err: unknown) => void;
}

/** Rate limiters shared across processes through one Redis. */
export interface RedisRateLimits {
  /** The limiter for one provider limit; same key, same schedule in every process. */
  limiter: RateLimiterFactory;
  close(): Promise<void>;
}

/**
 * Connects the shared limits to Redis (lazily: the first take connects).
 * @throws ConfigError for a URL that is not redis:// or rediss://
 * @example
 * const limits = createRedisRateLimits({ url: "redis://127.0.0.1:6379" });
 * const slack = limits.limiter("slack:#alerts", { rate: 1, burst: 3 });
 * await slack.take(signal); // every pod's posts to #alerts share this schedule
 */
export function createRedisRateLimits(options: RedisRateLimitsOptions): RedisRateLimits {
  const prefix = options.prefix ?? "fanda:rate:";
  const sleep = options.sleep ?? abortableSleep;
  const redis = connectRedis("rate limits", options.url, {
    lazyConnect: true,
    // Takes of the same tick (a batch's sends) share one write and one round trip.
    enableAutoPipelining: true,
    commandTimeout: 2000,
  }) as LimitRedis;
  redis.defineCommand("fandaLimit", { numberOfKeys: 1, lua: LIMIT_LUA });

  const limiter: RateLimiterFactory = (key, limit) => {
    const local = createRateLimiter(limit);
    const interval = 1000 / limit.rate;
    const burst = limit.burst ?? 1;
    const tolerance = (burst - 1) * interval;
    const redisKey = `${prefix}${key}`;
    const permits = createPermits(Math.max(1, burst));
    // This pod's view of the shared schedule, for waitMs(): when its own latest slot comes.
    let until = 0;
    // While Redis fails, this pod paces alone and asks Redis again from this time (monotonic).
    let localUntil = 0;
    let degraded = false;
    const call = (block: number) =>
      redis.fandaLimit(redisKey, interval, tolerance, block, options.now?.() ?? -1);
    const fellBack = (err: unknown) => {
      if (!degraded) options.onFallback?.(key, err);
      degraded = true;
      localUntil = performance.now() + 1000;
    };
    return {
      async take(signal) {
        if (signal?.aborted) throw signal.reason;
        if (performance.now() < localUntil) return local.take(signal);
        await permits.acquire(signal);
        try {
          let wait: number;
          try {
            wait = Number(await call(0));
            degraded = false;
          } catch (err) {
            fellBack(err);
            return await local.take(signal);
          }
          until = Math.max(until, performance.now() + wait);
          if (wait > 0) {
            limit.onWait?.(wait);
            await sleep(wait, signal);
          }
        } finally {
          permits.release();
        }
      },
      block(ms) {
        if (!(ms > 0)) return;
        local.block(ms);
        until = Math.max(until, performance.now() + ms);
        call(ms).catch(fellBack);
      },
      waitMs() {
        return Math.max(0, until - performance.now(), local.waitMs());
      },
    };
  };
  return {
    limiter,
    async close() {
      if (redis.status === "wait" || redis.status === "end") return;
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}

/** A counting semaphore whose waiters leave the queue when their signal aborts. */
function createPermits(count: number) {
  let free = count;
  const waiting: { resolve: () => void; signal?: AbortSignal; onAbort?: () => void }[] = [];
  return {
    acquire(signal?: AbortSignal): Promise<void> {
      if (free > 0) {
        free--;
        return Promise.resolve();
      }
      return new Promise<void>((resolve, reject) => {
        const waiter: (typeof waiting)[number] = { resolve };
        if (signal) {
          waiter.signal = signal;
          waiter.onAbort = () => {
            const i = waiting.indexOf(waiter);
            if (i >= 0) waiting.splice(i, 1);
            reject(signal.reason);
          };
          signal.addEventListener("abort", waiter.onAbort, { once: true });
        }
        waiting.push(waiter);
      });
    },
    release() {
      const next = waiting.shift();
      if (!next) {
        free++;
        return;
      }
      if (next.onAbort) next.signal?.removeEventListener("abort", next.onAbort);
      next.resolve();
    },
  };
}
