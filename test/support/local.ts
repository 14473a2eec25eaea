/** Helpers for tests, benchmarks and chaos runs that need local processes on free ports. */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { Redis } from "ioredis";
import { type Admin, type Kafka, logLevel as KafkaLogLevel } from "kafkajs";
import { createKafka, dlqTopicOf } from "../../core/kafka.ts";
import { createLogger } from "../../core/log.ts";
import { type RunResult, runCommand } from "../../scripts/run.ts";
import { waitFor } from "./wait.ts";

export { type RunResult, runCommand };

/** The local stack's bootstrap servers: KAFKA_BROKERS, or scripts/stack's listener. */
export const LOCAL_BROKERS = process.env.KAFKA_BROKERS ?? "127.0.0.1:9092";

/**
 * A kafkajs client for the local stack's PLAINTEXT listener.
 * @param options.logLevel kafkajs's own log level (default: nothing; its errors are the
 *   caller's to handle)
 * @param options.brokers bootstrap servers, comma-separated (default {@link LOCAL_BROKERS};
 *   {@link LOCAL_CLUSTER_BROKERS} for the three-broker cluster)
 */
export function localKafka(
  clientId: string,
  options: { topic?: string; logLevel?: KafkaLogLevel; brokers?: string } = {},
): Kafka {
  return createKafka(
    {
      brokers: (options.brokers ?? LOCAL_BROKERS).split(","),
      auth: "plaintext",
      ssl: false,
      topic: options.topic ?? "unused",
      clientId,
    },
    {
      logger: createLogger({ level: "error", ns: clientId }),
      logLevel: options.logLevel ?? KafkaLogLevel.NOTHING,
    },
  );
}

/** Where the processor's templates are, for a processor run from a bundle outside the tree. */
export const PROCESSOR_TEMPLATES_DIR = `${import.meta.dir}/../../processor/templates`;

/**
 * Bundles the processor for Node (`bun build --target=node`) into `outfile`.
 * @returns `outfile`
 * @throws when the build fails, with its output
 */
export async function buildProcessorForNode(outfile: string): Promise<string> {
  const built = await runCommand(
    ["bun", "build", "processor/src/main.ts", "--target=node", `--outfile=${outfile}`],
    { cwd: `${import.meta.dir}/../..` },
  );
  if (built.code !== 0) throw new Error(`bun build --target=node failed:\n${built.stderr}`);
  return outfile;
}

/**
 * The environment of a processor process on the local stack: this process's environment,
 * the topic and its group, the HTTP port, the stores, then `extra` (which wins).
 */
export function localProcessorEnv(
  where: { topic: string; port: number; redisUrl: string; mysqlUrl: string },
  extra: Record<string, string | undefined> = {},
): Record<string, string | undefined> {
  return {
    ...process.env,
    KAFKA_BROKERS: LOCAL_BROKERS,
    KAFKA_TOPIC: where.topic,
    KAFKA_GROUP_ID: `${where.topic}-processor`,
    HOST: "127.0.0.1",
    PORT: String(where.port),
    REDIS_URL: where.redisUrl,
    MYSQL_URL: where.mysqlUrl,
    ...extra,
  };
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export async function freePort(): Promise<number> {
  const probe = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response() });
  const port = probe.port ?? 0;
  await probe.stop(true);
  return port;
}

/** A private redis-server that can be killed and started again on its port. */
export interface PrivateRedis {
  port: number;
  url: string;
  /** Kills the server (SIGKILL) and waits for it to exit. */
  kill(): Promise<void>;
  /** Starts it again on the same port: empty, or with its append-only file replayed. */
  start(): void;
  /** Kills it and removes its data. */
  stop(): Promise<void>;
}

/**
 * Starts a private redis-server on a free port.
 * @param options.persistence `none` (default): a restart comes back empty; `aof`: an
 *   append-only file in a private folder with `appendfsync always`, so a restart — even
 *   after SIGKILL — keeps every acknowledged write, as a production Redis that survives a
 *   node loss (a replica, or persistence) does. (`everysec` is not enough for that: while a
 *   background fsync runs, Redis may reply before it writes, and a SIGKILL then loses the
 *   write; a test caught it.)
 */
export async function startPrivateRedis(
  options: { persistence?: "none" | "aof" } = {},
): Promise<PrivateRedis> {
  const port = await freePort();
  const dir = mkdtempSync(`${tmpdir()}/fanda-redis-`);
  const persistence =
    options.persistence === "aof"
      ? ["--appendonly", "yes", "--appendfsync", "always", "--dir", dir]
      : ["--appendonly", "no", "--dir", dir];
  let server: ReturnType<typeof Bun.spawn> | undefined;
  const start = () => {
    server = Bun.spawn(
      ["redis-server", "--port", String(port), "--bind", "127.0.0.1", "--save", "", ...persistence],
      { stdout: "ignore", stderr: "ignore" },
    );
  };
  const kill = async () => {
    server?.kill("SIGKILL");
    await server?.exited;
  };
  start();
  const stop = async () => {
    await kill();
    rmSync(dir, { recursive: true, force: true });
  };
  return { port, url: `redis://127.0.0.1:${port}`, kill, start, stop };
}

/** The three-broker cluster's bootstrap servers (`scripts/stack up --brokers 3`). */
export const LOCAL_CLUSTER_BROKERS =
  process.env.KAFKA_CLUSTER_BROKERS ?? "127.0.0.1:19092,127.0.0.1:19093,127.0.0.1:19094";

/** A TCP proxy on 127.0.0.1 in front of a local port, which can be cut and pointed elsewhere. */
export interface TcpProxy {
  port: number;
  /** Connections piped right now. */
  open(): number;
  /**
   * Drops every open connection and refuses new ones (the port stops listening) until
   * {@link restore}: a database or cache that went away, as far as its clients can tell.
   */
  cut(): void;
  /** Listens on the same port again. */
  restore(): Promise<void>;
  /**
   * Sends new connections to `port`; open ones stay where they are, as a DNS name moved to
   * another node leaves established connections on the old one.
   */
  retarget(port: number): void;
  stop(): Promise<void>;
}

/**
 * Starts a TCP proxy on a free port of 127.0.0.1 that pipes every connection to
 * 127.0.0.1:`targetPort`. For fault runs that must break one client's path to a shared
 * service (MariaDB) without touching the service, or move an endpoint (a Redis failover).
 */
export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  let target = targetPort;
  const sockets = new Set<Socket>();
  const onConnection = (client: Socket) => {
    const upstream = connect(target, "127.0.0.1");
    sockets.add(client);
    sockets.add(upstream);
    const close = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    for (const s of [client, upstream]) {
      s.on("error", close);
      s.on("close", close);
    }
    client.pipe(upstream);
    upstream.pipe(client);
  };
  const listen = (port: number) =>
    new Promise<Server>((resolve, reject) => {
      const server = createServer(onConnection);
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => resolve(server));
    });
  let server: Server | undefined = await listen(0);
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  const cut = () => {
    server?.close();
    server = undefined;
    for (const s of sockets) s.destroy();
    sockets.clear();
  };
  return {
    port,
    open: () => sockets.size / 2,
    cut,
    async restore() {
      if (!server) server = await listen(port);
    },
    retarget(next) {
      target = next;
    },
    async stop() {
      cut();
    },
  };
}

/** Sends one command to the Redis on 127.0.0.1:`port` and returns its reply. */
export async function redisCommand(port: number, args: string[]): Promise<unknown> {
  const client = new Redis({ host: "127.0.0.1", port, lazyConnect: true, maxRetriesPerRequest: 1 });
  client.on("error", () => {}); // the rejected call says it; the event would print it again
  try {
    await client.connect();
    return await client.call(args[0] as string, ...args.slice(1));
  } finally {
    client.disconnect();
  }
}

/** A Redis primary and its replica behind one endpoint, as ElastiCache's primary endpoint. */
export interface RedisPair {
  /** The primary endpoint (a proxy): new connections reach whichever node is primary now. */
  url: string;
  /** The node that is primary now, and the replica. */
  primary(): PrivateRedis;
  replica(): PrivateRedis;
  /**
   * Fails over as ElastiCache does: the replica is promoted, the endpoint moves to it, and the
   * old primary becomes a replica of it. Clients still connected to the old primary get
   * READONLY for every write until they reconnect.
   */
  failover(): Promise<void>;
  stop(): Promise<void>;
}

/** Waits until the replica on `port` reports its link to the primary up. */
async function waitReplicaLinked(port: number, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const info = String(await redisCommand(port, ["INFO", "replication"]).catch(() => ""));
    if (info.includes("master_link_status:up")) return;
    if (Date.now() > deadline) throw new Error(`redis replica on ${port} did not link: ${info}`);
    await Bun.sleep(100);
  }
}

/** Waits until the Redis on `port` answers PING. */
async function waitRedisUp(port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if ((await redisCommand(port, ["PING"]).catch(() => "")) === "PONG") return;
    if (Date.now() > deadline) throw new Error(`redis on ${port} did not answer PING`);
    await Bun.sleep(100);
  }
}

/**
 * Starts two private redis-servers (no persistence; the replica is the copy), the second a
 * replica of the first, and a proxy as the primary endpoint.
 */
export async function startRedisPair(): Promise<RedisPair> {
  let primary = await startPrivateRedis();
  let replica = await startPrivateRedis();
  await Promise.all([waitRedisUp(primary.port), waitRedisUp(replica.port)]);
  await redisCommand(replica.port, ["REPLICAOF", "127.0.0.1", String(primary.port)]);
  await waitReplicaLinked(replica.port);
  const endpoint = await startTcpProxy(primary.port);
  return {
    url: `redis://127.0.0.1:${endpoint.port}`,
    primary: () => primary,
    replica: () => replica,
    async failover() {
      const old = primary;
      await redisCommand(replica.port, ["REPLICAOF", "NO", "ONE"]);
      endpoint.retarget(replica.port);
      await redisCommand(old.port, ["REPLICAOF", "127.0.0.1", String(replica.port)]);
      primary = replica;
      replica = old;
      await waitReplicaLinked(replica.port);
    },
    async stop() {
      await endpoint.stop();
      await Promise.all([primary.stop(), replica.stop()]);
    },
  };
}

/** One record of a dead-letter topic: its value and headers as text. */
export interface DeadLetterRecord {
  value: string;
  headers: Record<string, string>;
}

/**
 * Reads the dead-letter topic of `topic` from the beginning (a fresh group each call) until
 * `until` holds for the records read so far, then waits `settleMs` more so that records
 * already there arrive too.
 * @param what what is waited for, for the timeout's message
 */
export async function readDeadLetters(
  kafka: Kafka,
  topic: string,
  what: string,
  until: (records: DeadLetterRecord[]) => boolean,
  options: { timeoutMs?: number; settleMs?: number } = {},
): Promise<DeadLetterRecord[]> {
  const consumer = kafka.consumer({
    groupId: `${topic}-dlq-reader-${crypto.randomUUID().slice(0, 8)}`,
    maxWaitTimeInMs: 300,
  });
  const records: DeadLetterRecord[] = [];
  await consumer.connect();
  await consumer.subscribe({ topics: [dlqTopicOf(topic)], fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message }) => {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(message.headers ?? {})) headers[k] = String(v);
      records.push({ value: message.value?.toString() ?? "", headers });
    },
  });
  try {
    await waitFor(what, () => until(records), options);
    if (options.settleMs) await Bun.sleep(options.settleMs);
  } finally {
    await consumer.disconnect();
  }
  return records;
}

/**
 * Messages of `topic` that `groupId` has not committed yet, over all partitions (all of a
 * partition's before the group's first commit on it). 0: every outcome is final.
 */
export async function groupLag(admin: Admin, topic: string, groupId: string): Promise<number> {
  const [ends, [committed]] = await Promise.all([
    admin.fetchTopicOffsets(topic),
    admin.fetchOffsets({ groupId, topics: [topic] }),
  ]);
  const done = new Map(
    (committed?.partitions ?? []).map((p) => [p.partition, Math.max(0, Number(p.offset))]),
  );
  return ends.reduce((sum, p) => sum + Number(p.high) - (done.get(p.partition) ?? 0), 0);
}

/** The resident memory of process `pid`, in MB (from /proc; throws once the process is gone). */
export function rssMbOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}
