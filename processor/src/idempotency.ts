/**
 * Idempotency of deliveries, two-phase per (eventId, channel).
 *
 * claim: atomically, if nobody holds the key, take it for `claimTtlMs`; if it says `done`,
 *   the channel already delivered this event; if another worker holds it, it is `busy` —
 *   unless that worker is gone: each worker keeps a liveness key alive (`ownerTtlMs`,
 *   refreshed with every claim and on a timer), and a claim whose owner's liveness key has
 *   lapsed is taken over at once. So a crashed worker's unfinished deliveries wait seconds,
 *   not the claim TTL, while a live worker's slow send (retries, rate limits) stays its own
 *   for the claim TTL.
 *   Re-claiming a key we hold ourselves extends it.
 * complete: after the provider confirmed the send, the key becomes `done` for `doneTtlMs`.
 * release: after a failed send, our claim is dropped so a later attempt can claim again.
 * extend: until its messages are handled, a batch's claims are renewed (the consumer's
 *   claimRenewal), so a send that outlasts the claim TTL (retries, rate limits) never has its
 *   key expire under it and claimed by another worker: liveness only protects claims whose
 *   key still exists.
 *
 * So a redelivered message resends only the channels that did not finish, and two workers
 * (say, the old and new owner of a partition during a rebalance) do not both send.
 * Claims for a whole batch go to Redis in one round trip and one script call (atomic, per up to
 * 1000 keys); done marks are group-committed: those that finish while one call is out go
 * together in the next.
 */
import type { Redis } from "ioredis";
import { DeliveryLogUnavailableError } from "./delivery-log/log.ts";
import { ConfigError, createHealthGate, FandaError } from "./errors.ts";
import { connectRedis } from "./redis.ts";

/** One delivery: an event on a channel. */
export interface DeliveryKey {
  eventId: string;
  channel: string;
}

/** What a claim found. */
export type ClaimState = "claimed" | "done" | "busy";

/** The store behind idempotency. */
export interface IdempotencyStore {
  readonly kind: "redis" | "memory";
  /** Claims each key; one result per key, in order. */
  claim(keys: readonly DeliveryKey[]): Promise<ClaimState[]>;
  /** Marks keys delivered. */
  complete(keys: readonly DeliveryKey[]): Promise<void>;
  /** Renews our claims (only ours) for another claim TTL; per key, whether we still hold it. */
  extend(keys: readonly DeliveryKey[]): Promise<boolean[]>;
  /** Drops our claims (only ours) so the deliveries can be tried again. */
  release(keys: readonly DeliveryKey[]): Promise<void>;
  /** Whether the last operation reached the store. */
  healthy(): boolean;
  /** What the status reports about the store (kind, and for memory its bound and size). */
  describe(): StoreDescription;
  close(): Promise<void>;
}

/** What {@link IdempotencyStore.describe} tells /readyz and /status. */
export type StoreDescription =
  | { kind: "redis" }
  | { kind: "memory"; bounded: true; maxEntries: number; entries: number; evicted: number };

/** The store could not be reached; retriable, and readiness goes false meanwhile. */
export class StoreUnavailableError extends FandaError {
  constructor(operation: string, cause: unknown) {
    super(`idempotency: ${operation}`, "store unavailable", { retriable: true, cause });
  }
}

/** Options shared by both stores. */
export interface StoreOptions {
  /** How long a claim holds without completion (default 120 s). */
  claimTtlMs?: number;
  /** How long `done` is remembered (default 7 days). */
  doneTtlMs?: number;
  /** Identifies this worker's claims (default: random per process). */
  owner?: string;
  /**
   * How long this worker's liveness outlasts its last heartbeat (default 15 s, refreshed
   * every third of it): after a crash, its claims can be taken over that much later.
   */
  ownerTtlMs?: number;
}

function checkOptions(o: StoreOptions) {
  const claimTtlMs = o.claimTtlMs ?? 120_000;
  const doneTtlMs = o.doneTtlMs ?? 7 * 24 * 3600 * 1000;
  const ownerTtlMs = o.ownerTtlMs ?? 15_000;
  const issues: string[] = [];
  if (!Number.isInteger(claimTtlMs) || claimTtlMs < 100) issues.push("claimTtlMs: expected >= 100");
  if (!Number.isInteger(doneTtlMs) || doneTtlMs < claimTtlMs) {
    issues.push("doneTtlMs: expected an integer >= claimTtlMs");
  }
  if (!Number.isInteger(ownerTtlMs) || ownerTtlMs < 100) {
    issues.push("ownerTtlMs: expected an integer >= 100");
  }
  if (issues.length > 0) throw new ConfigError("idempotency", issues);
  // `o:` owners keep a liveness key; claims of other shapes (an older version's `c:` owners,
  // during a rolling upgrade) are only ever freed by their TTL.
  return {
    claimTtlMs,
    doneTtlMs,
    ownerTtlMs,
    owner: `${OWNER_MARK}${o.owner ?? crypto.randomUUID()}`,
  };
}

const OWNER_MARK = "o:";

const DONE = "done";

// KEYS: the keys to claim; ARGV[1] our claim value, ARGV[2] claim TTL ms, ARGV[3] liveness
// key prefix. One result per key, in order. The owner's liveness key is named from the claim's
// value and the keys of a batch share no hash slot, so this script is for Redis without
// cluster mode (ElastiCache with one shard and replicas, as the stacks create). One call for
// many keys instead of one per key: the per-command cost (ioredis objects, timers, encoding)
// was most of a claim's CPU.
const CLAIM_LUA = `
local out = {}
for i = 1, #KEYS do
  local k = KEYS[i]
  local v = redis.call('GET', k)
  if not v then
    redis.call('SET', k, ARGV[1], 'PX', ARGV[2])
    out[i] = 'claimed'
  elseif v == 'done' then
    out[i] = 'done'
  elseif v == ARGV[1] then
    redis.call('PEXPIRE', k, ARGV[2])
    out[i] = 'claimed'
  elseif string.sub(v, 1, 2) == '${OWNER_MARK}' and redis.call('EXISTS', ARGV[3] .. v) == 0 then
    redis.call('SET', k, ARGV[1], 'PX', ARGV[2])
    out[i] = 'claimed'
  else
    out[i] = 'busy'
  end
end
return out
`;

// KEYS: the keys delivered; ARGV[1] the done TTL ms.
const DONE_LUA = `
for i = 1, #KEYS do redis.call('SET', KEYS[i], '${DONE}', 'PX', ARGV[1]) end
return #KEYS
`;

/** Keys per script call: bounds one call's arguments and how long it holds Redis. */
const KEYS_PER_CALL = 1000;

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

// KEYS[1] key; ARGV[1] our claim value. Deletes only our own claim.
const RELEASE_LUA = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

// KEYS[1] key; ARGV[1] our claim value, ARGV[2] claim TTL ms. Renews only our own claim.
const EXTEND_LUA = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`;

type FandaRedis = Redis & {
  fandaExtend(key: string, owner: string, ttl: number): Promise<number>;
  fandaClaim(count: number, ...keysThenArgs: (string | number)[]): Promise<string[]>;
  fandaDone(count: number, ...keysThenArgs: (string | number)[]): Promise<number>;
  fandaRelease(key: string, owner: string): Promise<number>;
};

/** Options of {@link createRedisStore}. */
export interface RedisStoreOptions extends StoreOptions {
  /** `redis://` or `rediss://` URL (TLS and auth for ElastiCache). */
  url: string;
  /** Key prefix (default `fanda:idem:`). */
  prefix?: string;
}

/**
 * Creates the Redis store (ioredis). Commands fail fast while Redis is unreachable, so
 * delivery backs off and retries instead of piling up in memory.
 * @throws ConfigError for a bad URL or TTLs
 * @example
 * const store = createRedisStore({ url: "redis://127.0.0.1:6379" });
 */
export function createRedisStore(options: RedisStoreOptions): IdempotencyStore {
  const { claimTtlMs, doneTtlMs, ownerTtlMs, owner } = checkOptions(options);
  const prefix = options.prefix ?? "fanda:idem:";
  const livenessPrefix = `${prefix}owner:`;
  const liveness = `${livenessPrefix}${owner}`;
  const redis = connectRedis("idempotency", options.url, {
    // Commands issued in the same tick share one write and one round trip: the completions
    // of concurrent deliveries coalesce without waiting for the end of the batch.
    enableAutoPipelining: true,
  }) as FandaRedis;
  redis.defineCommand("fandaClaim", { lua: CLAIM_LUA });
  redis.defineCommand("fandaDone", { lua: DONE_LUA });
  redis.defineCommand("fandaRelease", { numberOfKeys: 1, lua: RELEASE_LUA });
  redis.defineCommand("fandaExtend", { numberOfKeys: 1, lua: EXTEND_LUA });
  const gate = createHealthGate((op, cause) => new StoreUnavailableError(op, cause), false);
  const run = gate.run;
  const beat = () => void redis.set(liveness, "1", "PX", ownerTtlMs).catch(() => {});
  redis.on("ready", () => {
    gate.set(true);
    // Back after an outage (or a restart from disk, where our key may have lapsed): say we
    // are alive before anyone else's claim pipeline could take over what we hold.
    beat();
  });
  redis.on("close", () => gate.set(false));
  const keyOf = (k: DeliveryKey) => `${prefix}${k.eventId}:${k.channel}`;
  // Between claims (a long send, retries), a timer keeps us alive; a crash stops it.
  const heartbeat = setInterval(beat, Math.max(50, Math.floor(ownerTtlMs / 3)));
  heartbeat.unref?.();

  // Done marks are group-committed: the marks of one event-loop turn go in one script call,
  // and while a call is out, new marks queue and go together when it returns. Under load a
  // call carries what finished during the last round trip (sends complete one by one, so
  // flushing per turn sent nearly one call per delivery); idle, a mark goes at once. Each
  // caller's promise settles with its own call, so a mark is still confirmed before its
  // outcome counts as final.
  let doneQueue: { keys: string[]; resolve: () => void; reject: (e: unknown) => void }[] = [];
  let doneOut = false;
  const flushDone = () => {
    const queued = doneQueue;
    doneQueue = [];
    if (queued.length === 0) {
      doneOut = false;
      return;
    }
    const keys = queued.flatMap((q) => q.keys);
    // Inside a promise: a synchronous throw must reject these callers, not leave doneOut set.
    Promise.resolve()
      .then(() =>
        Promise.all(
          chunks(keys, KEYS_PER_CALL).map((c) => redis.fandaDone(c.length, ...c, doneTtlMs)),
        ),
      )
      .then(
        () => {
          for (const q of queued) q.resolve();
        },
        (err) => {
          for (const q of queued) q.reject(err);
        },
      )
      .finally(flushDone);
  };

  /** Executes a pipeline, failing if any command failed. */
  const exec = async (pipeline: ReturnType<Redis["pipeline"]>) => {
    const results = (await pipeline.exec()) ?? [];
    const failed = results.find(([err]) => err);
    if (failed?.[0]) throw failed[0];
    return results.map(([, value]) => value);
  };

  return {
    kind: "redis",
    claim: (keys) =>
      run("claiming", async () => {
        if (keys.length === 0) return [];
        const p = redis.pipeline() as ReturnType<Redis["pipeline"]> & {
          fandaClaim(count: number, ...keysThenArgs: (string | number)[]): unknown;
        };
        // Alive before we hold anything: the claims below are never orphaned at birth.
        p.set(liveness, "1", "PX", ownerTtlMs);
        const parts = chunks(keys, KEYS_PER_CALL);
        for (const c of parts) {
          p.fandaClaim(c.length, ...c.map(keyOf), owner, claimTtlMs, livenessPrefix);
        }
        const results = (await exec(p)).slice(1) as unknown[];
        const states = results.flatMap((r) => (Array.isArray(r) ? r : [])) as ClaimState[];
        if (results.length !== parts.length || states.length !== keys.length) {
          throw new Error(`claim pipeline answered ${states.length} of ${keys.length}`);
        }
        return states;
      }),
    complete: (keys) =>
      run("completing", async () => {
        if (keys.length === 0) return;
        await new Promise<void>((resolve, reject) => {
          doneQueue.push({ keys: keys.map(keyOf), resolve, reject });
          if (!doneOut) {
            doneOut = true;
            setImmediate(flushDone);
          }
        });
      }),
    extend: (keys) =>
      run("extending", async () => {
        const held = await Promise.all(
          keys.map((k) => redis.fandaExtend(keyOf(k), owner, claimTtlMs)),
        );
        return held.map((h) => h === 1);
      }),
    release: (keys) =>
      run("releasing", async () => {
        await Promise.all(keys.map((k) => redis.fandaRelease(keyOf(k), owner)));
      }),
    healthy: gate.healthy,
    describe: () => ({ kind: "redis" }),
    async close() {
      clearInterval(heartbeat);
      // Gone on purpose: whatever we still hold may be taken over at once.
      await redis.del(liveness).catch(() => {});
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}

/** The state of memory stores; stores given the same state behave like workers on one Redis. */
export type MemoryState = Map<string, { value: string; expiresAt: number }>;

/** Default bound of the in-memory store: about 20 MiB of keys. */
export const DEFAULT_MEMORY_MAX_ENTRIES = 100_000;

/**
 * Creates the in-memory store: the same semantics in one process, for local development (no
 * REDIS_URL; config.ts refuses it in Kubernetes and production unless allowed). It does not
 * survive a restart, so a crash can resend (docs/architecture.md). It is bounded: past
 * `maxEntries` keys the least recently written are dropped, so memory stays flat however long
 * the done TTL; a dropped done mark is still found in the delivery log when the store is
 * composed with {@link withDeliveryLogFallback}, as main.ts does.
 * @param options.state shared state (default: a new one)
 * @param options.now clock in ms (default Date.now)
 * @param options.maxEntries keys kept at most (default {@link DEFAULT_MEMORY_MAX_ENTRIES})
 * @throws ConfigError for bad TTLs or bound
 */
export function createMemoryStore(
  options: StoreOptions & { now?: () => number; state?: MemoryState; maxEntries?: number } = {},
): IdempotencyStore {
  const { claimTtlMs, doneTtlMs, ownerTtlMs, owner } = checkOptions(options);
  const maxEntries = options.maxEntries ?? DEFAULT_MEMORY_MAX_ENTRIES;
  if (!Number.isInteger(maxEntries) || maxEntries < 1) {
    throw new ConfigError("idempotency", ["maxEntries: expected an integer >= 1"]);
  }
  const now = options.now ?? Date.now;
  const entries: MemoryState = options.state ?? new Map();
  let evicted = 0;
  // A Map iterates in insertion order: writing a key anew moves it to the end, so the front
  // holds the least recently written, which go first. Liveness keys are never dropped.
  const put = (key: string, entry: { value: string; expiresAt: number }) => {
    entries.delete(key);
    entries.set(key, entry);
    if (entries.size <= maxEntries) return;
    for (const k of entries.keys()) {
      if (entries.size <= maxEntries) break;
      if (k.startsWith("owner:")) continue;
      entries.delete(k);
      evicted++;
    }
  };
  // Liveness as on Redis, so stores sharing a state behave like workers on one Redis.
  const livenessOf = (who: string) => `owner:${who}`;
  const beat = () => put(livenessOf(owner), { value: "1", expiresAt: now() + ownerTtlMs });
  beat();
  const heartbeat = setInterval(beat, Math.max(50, Math.floor(ownerTtlMs / 3)));
  heartbeat.unref?.();
  const keyOf = (k: DeliveryKey) => `${k.eventId}:${k.channel}`;
  const get = (key: string) => {
    const e = entries.get(key);
    if (e && e.expiresAt <= now()) {
      entries.delete(key);
      return undefined;
    }
    return e?.value;
  };
  const sweep = () => {
    const t = now();
    for (const [k, e] of entries) if (e.expiresAt <= t) entries.delete(k);
  };
  let ops = 0;
  return {
    kind: "memory",
    async claim(keys) {
      if (++ops % 10_000 === 0) sweep();
      beat();
      return keys.map((k) => {
        const key = keyOf(k);
        const v = get(key);
        if (v === DONE) return "done";
        const ownerGone = v?.startsWith(OWNER_MARK) === true && get(livenessOf(v)) === undefined;
        if (v === undefined || v === owner || ownerGone) {
          put(key, { value: owner, expiresAt: now() + claimTtlMs });
          return "claimed";
        }
        return "busy";
      });
    },
    async complete(keys) {
      for (const k of keys) put(keyOf(k), { value: DONE, expiresAt: now() + doneTtlMs });
    },
    async extend(keys) {
      return keys.map((k) => {
        if (get(keyOf(k)) !== owner) return false;
        put(keyOf(k), { value: owner, expiresAt: now() + claimTtlMs });
        return true;
      });
    },
    async release(keys) {
      for (const k of keys) if (get(keyOf(k)) === owner) entries.delete(keyOf(k));
    },
    healthy: () => true,
    describe: () => ({ kind: "memory", bounded: true, maxEntries, entries: entries.size, evicted }),
    async close() {
      clearInterval(heartbeat);
      entries.delete(livenessOf(owner));
    },
  };
}

/** What {@link withDeliveryLogFallback} reads: the delivery log's delivered rows. */
export interface DeliveredLookup {
  delivered(keys: readonly DeliveryKey[]): Promise<boolean[]>;
  /** False while the database is known to be down: the lookup is skipped, not waited for. */
  healthy?(): boolean;
}

/** Options of {@link withDeliveryLogFallback}. */
export interface DeliveryLogFallbackOptions {
  /** The log could not answer: the claims stand as the store gave them. */
  onUnavailable?: (err: unknown) => void;
  /** The log knew deliveries the store had forgotten (their done marks are set again). */
  onRecovered?: (keys: readonly DeliveryKey[]) => void;
  /**
   * Longest wait for the log's answer, in ms (default 2000), far below the claim TTL: past it
   * the claims stand, and the log is not asked again until that lookup ends (a hung database
   * must not hold every batch's claims, nor let them expire before their sends).
   */
  timeoutMs?: number;
}

/**
 * Makes the delivery log the store's second line. A store can forget done marks (Redis
 * failed over to an empty replica, an evicted in-memory key, a replay after the done TTL):
 * every key a claim finds without a done mark is looked up in the log, in one query per
 * claim call, and a delivered row makes it `done` (and its done mark is set again). So a
 * delivery is resent only when neither remembers it: what was delivered but not yet written
 * to the log, the in-flight bound. While the log cannot answer, claims behave as without it
 * (`claimed`): delivery does not stop for the log.
 * @example
 * const store = withDeliveryLogFallback(createRedisStore({ url }), deliveryLog);
 */
export function withDeliveryLogFallback(
  store: IdempotencyStore,
  log: DeliveredLookup,
  options: DeliveryLogFallbackOptions = {},
): IdempotencyStore {
  const timeoutMs = options.timeoutMs ?? 2000;
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1) {
    throw new ConfigError("idempotency", ["timeoutMs: expected an integer >= 1"]);
  }
  // A lookup that outlasted timeoutMs and has not ended: the log is not asked meanwhile.
  let hung: Promise<unknown> | undefined;
  /** The log's answer, or undefined when it took longer than timeoutMs. */
  const lookup = async (keys: DeliveryKey[]): Promise<boolean[] | undefined> => {
    const asked = Promise.resolve().then(() => log.delivered(keys));
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), timeoutMs);
    });
    try {
      const found = await Promise.race([asked, late]);
      if (found === undefined) {
        const mine = asked.then(
          () => {},
          () => {},
        );
        hung = mine;
        void mine.then(() => {
          if (hung === mine) hung = undefined;
        });
      }
      return found;
    } finally {
      clearTimeout(timer);
    }
  };
  return {
    ...store,
    kind: store.kind,
    async claim(keys) {
      const states = await store.claim(keys);
      const open = states.flatMap((s, i) => (s === "claimed" ? [i] : []));
      if (open.length === 0) return states;
      // Known down (a flush is retrying): do not add a connect timeout to every batch.
      if (log.healthy?.() === false || hung) return states;
      let found: boolean[] | undefined;
      try {
        found = await lookup(open.map((i) => keys[i] as DeliveryKey));
      } catch (err) {
        options.onUnavailable?.(err);
        return states;
      }
      if (found === undefined) {
        options.onUnavailable?.(
          new DeliveryLogUnavailableError(
            "looking up delivered rows",
            new Error(`no answer within ${timeoutMs} ms`),
          ),
        );
        return states;
      }
      const done = open.filter((_, j) => found[j] === true);
      if (done.length === 0) return states;
      const doneKeys = done.map((i) => keys[i] as DeliveryKey);
      // Turns our fresh claims into done marks; if the store fails now, the claims lapse and
      // the next claim asks the log again.
      await store.complete(doneKeys).catch(() => {});
      options.onRecovered?.(doneKeys);
      const out = [...states];
      for (const i of done) out[i] = "done";
      return out;
    },
  };
}
