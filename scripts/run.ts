/**
 * Runs a command to the end. A module of its own, without dependencies, so scripts that only
 * shell out (env-sync, replay-job, manifest checks) load nothing else.
 */
/** What a finished command printed and how it exited. */
export interface RunResult {
  stdout: string;
  stderr: string;
  code: number;
}

/** Runs a command to the end, collecting its output (`input` is written to its stdin). */
export async function runCommand(
  cmd: string[],
  options: { cwd?: string; env?: Record<string, string | undefined>; input?: string } = {},
): Promise<RunResult> {
  const proc = Bun.spawn(cmd, {
    ...(options.cwd ? { cwd: options.cwd } : {}),
    ...(options.env ? { env: options.env } : {}),
    stdin: options.input === undefined ? "ignore" : new Blob([options.input]),
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
