/** Helpers for tests, benchmarks and chaos runs that need local processes on free ports. */

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export async function freePort(): Promise<number> {
  const probe = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response() });
  const port = probe.port ?? 0;
  await probe.stop(true);
  return port;
}

/** A private redis-server (no persistence) that can be killed and started again on its port. */
export interface PrivateRedis {
  port: number;
  url: string;
  /** Kills the server (SIGKILL: it forgets everything) and waits for it to exit. */
  kill(): Promise<void>;
  /** Starts it again, empty, on the same port. */
  start(): void;
  stop(): Promise<void>;
}

/** Starts a private redis-server on a free port. */
export async function startPrivateRedis(): Promise<PrivateRedis> {
  const port = await freePort();
  let server: ReturnType<typeof Bun.spawn> | undefined;
  const start = () => {
    server = Bun.spawn(
      [
        "redis-server",
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
      ],
      { stdout: "ignore", stderr: "ignore" },
    );
  };
  const kill = async () => {
    server?.kill("SIGKILL");
    await server?.exited;
  };
  start();
  return { port, url: `redis://127.0.0.1:${port}`, kill, start, stop: kill };
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
