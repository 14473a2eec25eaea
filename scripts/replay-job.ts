/**
 * Runs a replay in the cluster: a Job made from the deployed `fanda-replay` template (a
 * suspended CronJob in kustomize/base/jobs.yaml), with the replay's own options appended. The
 * Job runs under the fanda-replay ServiceAccount, whose role may read the DLQ and write the
 * main topic, and nothing else.
 *
 *   bun scripts/replay-job.ts --namespace fanda-dev -- --dry-run
 *   bun scripts/replay-job.ts --namespace fanda -- --reason delivery-failed --since 2026-12-01T00:00:00Z
 *   bun scripts/replay-job.ts --namespace fanda --print -- --dry-run     (print the Job, apply nothing)
 *
 * Needs kubectl with access to the namespace. Waits for the Job and prints its log.
 */
import { parseArgs } from "node:util";
import { runCommand } from "./run.ts";

/** The replay template's name and container (kustomize/src/manifests.ts). */
export const TEMPLATE = "fanda-replay";
const CONTAINER = "replay";

// biome-ignore lint/suspicious/noExplicitAny: Kubernetes objects of many shapes.
type Loose = Record<string, any>;

/**
 * The Job for one replay: the CronJob's job template, its replay container's arguments extended
 * by `replayArgs`, named after the time so replays never collide.
 * @throws Error when `cronJob` is not the replay template
 */
export function replayJob(cronJob: Loose, replayArgs: string[], now = new Date()): Loose {
  if (cronJob?.kind !== "CronJob" || cronJob.metadata?.name !== TEMPLATE)
    throw new Error(
      `expected the CronJob ${TEMPLATE}, got ${cronJob?.kind}/${cronJob?.metadata?.name}`,
    );
  const template = structuredClone(cronJob.spec?.jobTemplate) as Loose | undefined;
  const containers = template?.spec?.template?.spec?.containers as Loose[] | undefined;
  const container = containers?.find((c) => c.name === CONTAINER);
  if (!template || !container) throw new Error(`${TEMPLATE} has no ${CONTAINER} container`);
  for (const a of replayArgs)
    if (/[\r\n\0]/.test(a)) throw new Error(`replay option ${JSON.stringify(a)} has a line break`);
  container.args = [...(container.args ?? []), ...replayArgs];
  const stamp = now.toISOString().replace(/[-:T]/g, "").slice(0, 14);
  return {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: {
      name: `${TEMPLATE}-${stamp}`,
      namespace: cronJob.metadata.namespace,
      labels: template.metadata?.labels ?? {},
      annotations: { "cronjob.kubernetes.io/instantiate": "manual" },
    },
    spec: template.spec,
  };
}

async function kubectl(args: string[], input?: string): Promise<string> {
  const r = await runCommand(["kubectl", ...args], input === undefined ? {} : { input });
  if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")}: ${r.stderr.trim()}`);
  return r.stdout;
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      namespace: { type: "string", short: "n" },
      print: { type: "boolean", default: false },
      timeout: { type: "string", default: "3600s" },
    },
  });
  if (!values.namespace) {
    console.error(
      "usage: bun scripts/replay-job.ts --namespace <ns> [--print] -- [replay options]",
    );
    process.exit(2);
  }
  if (!/^\d+[smh]$/.test(values.timeout)) {
    console.error(`--timeout: expected a duration like 600s or 1h, got ${values.timeout}`);
    process.exit(2);
  }
  try {
    const ns = values.namespace;
    const cron = JSON.parse(await kubectl(["-n", ns, "get", "cronjob", TEMPLATE, "-o", "json"]));
    const job = replayJob(cron, positionals);
    if (values.print) {
      console.log(JSON.stringify(job, null, 2));
      process.exit(0);
    }
    await kubectl(["-n", ns, "create", "-f", "-"], JSON.stringify(job));
    const name = job.metadata.name as string;
    console.error(`created job/${name}; waiting for it (kubectl -n ${ns} logs -f job/${name})`);
    const done = await kubectl([
      "-n",
      ns,
      "wait",
      `job/${name}`,
      "--for=jsonpath={.status.conditions[0].status}=True",
      `--timeout=${values.timeout}`,
    ]).then(
      () => true,
      () => false,
    );
    process.stdout.write(await kubectl(["-n", ns, "logs", `job/${name}`, "--all-containers"]));
    const status = JSON.parse(await kubectl(["-n", ns, "get", `job/${name}`, "-o", "json"]));
    const ok = (status.status?.succeeded ?? 0) > 0;
    console.error(
      ok ? `job/${name} succeeded` : `job/${name} did not succeed${done ? "" : " in time"}`,
    );
    process.exit(ok ? 0 : 1);
  } catch (err) {
    console.error((err as Error).message);
    process.exit(1);
  }
}
