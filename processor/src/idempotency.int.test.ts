/**
 * The Redis store against real Redis: the machine's (scripts/stack up) for the conformance
 * suite, and a private redis-server on a free port for the restart test.
 */
import { afterAll, describe, expect, test } from "bun:test";
import type { Socket } from "bun";
import { Redis } from "ioredis";
import { type PrivateRedis, redisCommand, startPrivateRedis } from "../../test/support/local.ts";
import { waitFor } from "../../test/support/wait.ts";
import { idempotencyConformance } from "./idempotency.conformance.ts";
import { createRedisStore, StoreUnavailableError } from "./idempotency.ts";

const url = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

idempotencyConformance(
  "redis",
  ({ space, ...options }) =>
    // Short TTLs so test keys do not linger in the machine's Redis.
    createRedisStore({
      url,
      prefix: `fanda-test:${space}:`,
      claimTtlMs: 5_000,
      doneTtlMs: 60_000,
      ...options,
    }),
  (ms) => Bun.sleep(ms),
);

describe("redis store", () => {
  test("a batch of more keys than one script call takes: one state per key, in order; done marks of concurrent deliveries all land", async () => {
    const prefix = `fanda-test:many-${crypto.randomUUID()}:`;
    const a = createRedisStore({ url, prefix, claimTtlMs: 5_000, doneTtlMs: 60_000 });
    const b = createRedisStore({ url, prefix, claimTtlMs: 5_000, doneTtlMs: 60_000 });
    try {
      const keys = Array.from({ length: 2500 }, (_, i) => ({
        eventId: `e${i}`,
        channel: i % 2 === 0 ? "webhook" : "slack",
      }));
      const doneOnes = keys.filter((_, i) => i % 7 === 0);
      const theirs = keys.filter((_, i) => i % 7 === 3);
      await a.claim(doneOnes);
      // Many deliveries finishing together, each awaiting its own mark.
      await Promise.all(doneOnes.map((k) => a.complete([k])));
      expect(await b.claim(theirs)).toEqual(theirs.map(() => "claimed"));
      const expected = keys.map((_, i) =>
        i % 7 === 0 ? "done" : i % 7 === 3 ? "busy" : "claimed",
      );
      expect(await a.claim(keys)).toEqual(expected);
    } finally {
      await a.close();
      await b.close();
    }
  });

  test("refuses a URL that is not redis", () => {
    expect(() => createRedisStore({ url: "http://x" })).toThrow(
      /expected redis:\/\/ or rediss:\/\//,
    );
    expect(() => createRedisStore({ url: "nope" })).toThrow(/REDIS_URL: not a valid URL/);
  });

  const servers: PrivateRedis[] = [];
  afterAll(async () => {
    for (const s of servers) await s.stop();
  });

  test("done marks are group-committed: marks that finish while a call is out go together in the next", async () => {
    const redis = await startPrivateRedis();
    servers.push(redis);
    const store = createRedisStore({ url: redis.url, prefix: "group:" });
    const keys = Array.from({ length: 50 }, (_, i) => ({ eventId: `g${i}`, channel: "webhook" }));
    const warm = { eventId: "warm", channel: "webhook" };
    await waitFor(
      "redis to accept claims",
      async () => (await store.claim([warm]))[0] === "claimed",
    );
    await store.complete([warm]); // loads the script: every later call is one EVALSHA
    expect(await store.claim(keys)).toEqual(keys.map(() => "claimed"));
    await redisCommand(redis.port, ["CONFIG", "RESETSTAT"]);
    // Scripts wait while clients are paused: the first mark's call stays out for 2 s.
    await redisCommand(redis.port, ["CLIENT", "PAUSE", "2000", "WRITE"]);
    const marks: Promise<void>[] = [];
    for (const k of keys) {
      marks.push(store.complete([k])); // one mark per event-loop turn, as sends finish
      await new Promise((r) => setImmediate(r));
    }
    await Promise.all(marks);
    const stats = String(await redisCommand(redis.port, ["INFO", "commandstats"]));
    const calls = Number(/cmdstat_evalsha:calls=(\d+)/.exec(stats)?.[1]);
    // One call per turn would be 50; the first goes alone, the rest queue behind it.
    expect(calls).toBeGreaterThanOrEqual(2);
    expect(calls).toBeLessThan(5);
    expect(await store.claim(keys)).toEqual(keys.map(() => "done"));
    await store.close();
  });

  test("fails fast while Redis is down and recovers when it is back", async () => {
    const redis = await startPrivateRedis();
    servers.push(redis);
    const store = createRedisStore({ url: redis.url, prefix: "restart:" });
    const k = { eventId: "e1", channel: "webhook" };
    await waitFor("redis to accept claims", async () => (await store.claim([k]))[0] === "claimed");
    expect(store.healthy()).toBe(true);

    await redis.kill();
    const err = await waitFor("a failing claim", async () => {
      try {
        await store.claim([k]);
        return false;
      } catch (e) {
        return e;
      }
    });
    expect(err).toBeInstanceOf(StoreUnavailableError);
    expect((err as StoreUnavailableError).retriable).toBe(true);
    expect(store.healthy()).toBe(false);

    redis.start();
    // A fresh Redis has forgotten the claim: the delivery can be claimed again.
    await waitFor("claims after the restart", async () => {
      try {
        return (await store.claim([k]))[0] === "claimed";
      } catch {
        return false;
      }
    });
    expect(store.healthy()).toBe(true);
    await store.close();
  }, 30_000);

  test("a Redis that keeps its data (append-only file) remembers done keys across a SIGKILL; one that comes back empty forgets them", async () => {
    const remembered: Record<string, string> = {};
    for (const persistence of ["aof", "none"] as const) {
      const redis = await startPrivateRedis({ persistence });
      servers.push(redis);
      const worker = createRedisStore({ url: redis.url, prefix: "kill:" });
      const k = { eventId: "e1", channel: "webhook" };
      await waitFor("redis to accept claims", async () => (await worker.claim([k]))[0]);
      await worker.complete([k]);
      await redis.kill();
      redis.start();
      // Another worker, as after a processor restart.
      const successor = createRedisStore({ url: redis.url, prefix: "kill:" });
      remembered[persistence] = await waitFor("claims after the restart", async () => {
        try {
          return (await successor.claim([k]))[0];
        } catch {
          return undefined;
        }
      });
      await worker.close();
      await successor.close();
    }
    expect(remembered).toEqual({ aof: "done", none: "claimed" });
  }, 30_000);

  test("SIGKILLed worker: its claim is busy while it lives, and taken over within seconds of its death, not after the claim TTL", async () => {
    const prefix = `fanda-test:crash:${crypto.randomUUID()}:`;
    const k = { eventId: "e1", channel: "webhook" };
    const script = `
      import { createRedisStore } from ${JSON.stringify(`${import.meta.dir}/idempotency.ts`)};
      const s = createRedisStore({ url: ${JSON.stringify(url)}, prefix: ${JSON.stringify(prefix)},
        owner: "crasher", claimTtlMs: 60000, ownerTtlMs: 1000 });
      console.log(JSON.stringify(await s.claim([${JSON.stringify(k)}])));
      setInterval(() => {}, 1000);
    `;
    const crasher = Bun.spawn(["bun", "-e", script], { stdout: "pipe", stderr: "inherit" });
    const reader = crasher.stdout.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    expect(first.trim()).toBe('["claimed"]');
    const successor = createRedisStore({ url, prefix, claimTtlMs: 60_000, ownerTtlMs: 1000 });
    // Alive for two and a half of its liveness TTLs: its heartbeat keeps the claim its own.
    await Bun.sleep(2500);
    expect(await successor.claim([k])).toEqual(["busy"]);
    crasher.kill("SIGKILL");
    await crasher.exited;
    const killedAt = Date.now();
    await waitFor(
      "the claim to be taken over",
      async () => (await successor.claim([k]))[0] === "claimed",
      { timeoutMs: 10_000, intervalMs: 100 },
    );
    console.log(`claim taken over ${Date.now() - killedAt} ms after SIGKILL (claim TTL 60000 ms)`);
    await successor.close();
  }, 30_000);

  test("after a failover leaves the connection on a demoted primary (READONLY), the store reconnects and claims work again without a restart", async () => {
    const old = await startPrivateRedis();
    const promoted = await startPrivateRedis();
    servers.push(old, promoted);
    for (const s of [old, promoted]) {
      const c = new Redis(s.url, { lazyConnect: true, maxRetriesPerRequest: 0 });
      c.on("error", () => {});
      await waitFor("private redis", async () =>
        c.connect().then(
          () => true,
          () => false,
        ),
      );
      c.disconnect();
    }
    // The endpoint the clients use, as ElastiCache's primary endpoint: a failover moves it to
    // the new primary for new connections, and leaves open ones where they are.
    const endpoint = startEndpoint(old.port);
    const store = createRedisStore({ url: `redis://127.0.0.1:${endpoint.port}`, prefix: "ro:" });
    const k = () => ({ eventId: crypto.randomUUID().replace(/-/g, ""), channel: "webhook" });
    await waitFor("claims", async () => (await store.claim([k()]))[0] === "claimed");

    const admin = new Redis(old.url);
    await admin.call("REPLICAOF", "127.0.0.1", String(promoted.port));
    admin.disconnect();
    endpoint.target = promoted.port;

    await waitFor(
      "claims on the new primary",
      async () => {
        try {
          return (await store.claim([k()]))[0] === "claimed";
        } catch {
          return false;
        }
      },
      { timeoutMs: 10_000, intervalMs: 200 },
    );
    await store.close();
    endpoint.stop();
  }, 30_000);
});

/** A TCP endpoint that forwards each new connection to `target` (changeable). */
function startEndpoint(target: number) {
  type Link = { upstream?: Socket<unknown>; pending: Uint8Array[] };
  const state = { target };
  const server = Bun.listen<Link>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open(client) {
        client.data = { pending: [] };
        void Bun.connect({
          hostname: "127.0.0.1",
          port: state.target,
          socket: {
            open(upstream) {
              client.data.upstream = upstream;
              for (const chunk of client.data.pending) upstream.write(chunk);
              client.data.pending = [];
            },
            data(_upstream, chunk) {
              client.write(chunk);
            },
            close() {
              client.end();
            },
            error() {
              client.end();
            },
          },
        }).catch(() => client.end());
      },
      data(client, chunk) {
        if (client.data.upstream) client.data.upstream.write(chunk);
        else client.data.pending.push(new Uint8Array(chunk));
      },
      close(client) {
        client.data.upstream?.end();
      },
    },
  });
  return {
    port: server.port,
    get target() {
      return state.target;
    },
    set target(port: number) {
      state.target = port;
    },
    stop: () => server.stop(true),
  };
}
