/** Helpers for tests, benchmarks and chaos runs that need local processes on free ports. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";

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

/** What a finished command printed and how it exited. */
export interface RunResult {
  stdout: string;
  stderr: string;
  code: number;
}

/** Runs a command to the end, collecting its output. */
export async function runCommand(
  cmd: string[],
  options: { cwd?: string; env?: Record<string, string | undefined> } = {},
): Promise<RunResult> {
  const proc = Bun.spawn(cmd, {
    ...(options.cwd ? { cwd: options.cwd } : {}),
    ...(options.env ? { env: options.env } : {}),
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  return { stdout, stderr, code };
}
