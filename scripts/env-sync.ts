/**
 * Writes an environment's stack.env (kustomize/overlays/<env>/stack/stack.env) from its Pulumi
 * stack's `environment` output: the one place every value that more than one layer needs
 * (namespace, role ARNs, brokers, CIDR, secret names, ECR repository, repository URL...) flows
 * from infrastructure into the manifests. infra.yml runs it after `pulumi up` and commits the
 * file; Kustomize replacements (kustomize/components/stack) carry the values into the objects.
 *
 *   bun scripts/env-sync.ts dev                  reads `pulumi stack output --json` in infra/
 *   bun scripts/env-sync.ts dev --from file.json  reads the outputs from a file instead
 *   bun scripts/env-sync.ts dev --synth           from the offline mock stack (infra/synth.ts)
 *   bun scripts/env-sync.ts dev --check           exit 1 when the committed file differs
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { runCommand } from "./run.ts";

const ROOT = join(import.meta.dir, "..");

/** The environments this repository deploys (Pulumi stacks and overlays of the same names). */
export const ENVIRONMENTS = ["dev", "prod"] as const;
export type Environment = (typeof ENVIRONMENTS)[number];

/** Where an environment's stack.env lives. */
export function stackEnvPath(env: Environment): string {
  return join(ROOT, "kustomize", "overlays", env, "stack", "stack.env");
}

const KEY = /^[a-zA-Z][a-zA-Z0-9]*$/;

/**
 * Validates a stack's `environment` output and renders it as a stack.env file: sorted
 * `key=value` lines under a header. Values must be single-line and non-empty; a value Kustomize
 * would read differently (leading or trailing space, a quote) is refused.
 * @throws Error naming every bad key
 */
export function renderStackEnv(env: Environment, environment: unknown): string {
  if (!environment || typeof environment !== "object" || Array.isArray(environment))
    throw new Error("the stack has no `environment` output (an object of strings)");
  const problems: string[] = [];
  const lines: string[] = [];
  for (const [key, value] of Object.entries(environment).sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (!KEY.test(key)) problems.push(`${key}: not a plain key`);
    else if (typeof value !== "string" || value.length === 0)
      problems.push(`${key}: expected a non-empty string`);
    else if (/[\r\n]/.test(value) || value.trim() !== value || /^["']/.test(value))
      problems.push(`${key}: value must be one line without surrounding spaces or quotes`);
    else lines.push(`${key}=${value}`);
  }
  const declared = (environment as Record<string, unknown>).environment;
  if (declared !== undefined && declared !== env)
    problems.push(`environment: the stack says ${String(declared)}, expected ${env}`);
  if (problems.length > 0)
    throw new Error(`stack environment of ${env} is invalid:\n  - ${problems.join("\n  - ")}`);
  return `# Written by scripts/env-sync.ts from the Pulumi stack "${env}" (its \`environment\` output).\n# Do not edit: change the stack configuration (infra/Pulumi.${env}.yaml), \`pulumi up\`, re-run.\n${lines.join("\n")}\n`;
}

/** Parses a stack.env file back into its values (comments and blank lines skipped). */
export function parseStackEnv(text: string): Record<string, string> {
  const out: Record<string, string> = Object.create(null);
  for (const [i, raw] of text.split("\n").entries()) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const at = line.indexOf("=");
    if (at <= 0) throw new Error(`stack.env line ${i + 1}: expected key=value`);
    out[line.slice(0, at)] = line.slice(at + 1);
  }
  return out;
}

async function run(cmd: string[], cwd: string): Promise<string> {
  const r = await runCommand(cmd, { cwd });
  if (r.code !== 0) throw new Error(`${cmd.join(" ")} failed (exit ${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}

/** The stack outputs, from the Pulumi CLI, a file, or the offline mock program. */
async function outputsOf(
  env: Environment,
  source: { from?: string; synth?: boolean },
): Promise<Record<string, unknown>> {
  const infra = join(ROOT, "infra");
  let text: string;
  if (source.from) text = readFileSync(source.from, "utf8");
  else if (source.synth)
    text = await run(["bun", join(infra, "synth.ts"), env, "--outputs"], infra);
  else {
    if (!Bun.which("pulumi"))
      throw new Error("the pulumi CLI is not on PATH (or pass --from <outputs.json>)");
    text = await run(["pulumi", "stack", "output", "--json", "--stack", env], infra);
  }
  return JSON.parse(text) as Record<string, unknown>;
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      from: { type: "string" },
      synth: { type: "boolean", default: false },
      check: { type: "boolean", default: false },
    },
  });
  const env = positionals[0] as Environment | undefined;
  if (!env || !ENVIRONMENTS.includes(env) || positionals.length > 1) {
    console.error(
      `usage: bun scripts/env-sync.ts <${ENVIRONMENTS.join("|")}> [--from outputs.json | --synth] [--check]`,
    );
    process.exit(2);
  }
  if (values.from && values.synth) {
    console.error("--from and --synth: choose one source");
    process.exit(2);
  }
  try {
    const outputs = await outputsOf(env, values);
    const text = renderStackEnv(env, outputs.environment);
    const path = stackEnvPath(env);
    if (values.check) {
      const committed = existsSync(path) ? readFileSync(path, "utf8") : "";
      if (committed !== text) {
        console.error(`${path} is out of date: run bun scripts/env-sync.ts ${env}`);
        process.exit(1);
      }
      console.log(`${path} is up to date`);
    } else {
      writeFileSync(path, text);
      console.log(`${path}: ${Object.keys(parseStackEnv(text)).length} values`);
    }
  } catch (err) {
    console.error((err as Error).message);
    process.exit(1);
  }
}
