/** Helpers for tests, benchmarks and chaos runs that need local processes on free ports. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { type Kafka, logLevel as KafkaLogLevel } from "kafkajs";
import { createKafka } from "../../core/kafka.ts";
import { createLogger } from "../../core/log.ts";
import { type RunResult, runCommand } from "../../scripts/run.ts";

export { type RunResult, runCommand };

/** The local stack's bootstrap servers: KAFKA_BROKERS, or scripts/stack's listener. */
export const LOCAL_BROKERS = process.env.KAFKA_BROKERS ?? "127.0.0.1:9092";

/**
 * A kafkajs client for the local stack's PLAINTEXT listener.
 * @param options.logLevel kafkajs's own log level (default: nothing; its errors are the
 *   caller's to handle)
 */
export function localKafka(
  clientId: string,
  options: { topic?: string; logLevel?: KafkaLogLevel } = {},
): Kafka {
  return createKafka(
    {
      brokers: LOCAL_BROKERS.split(","),
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
