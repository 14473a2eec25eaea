/**
 * The configuration reference agrees with the code: every environment variable the code reads
 * is documented in docs/configuration.md, and every documented one is read somewhere.
 *
 * Reads are found in the text of the sources, by the ways this codebase reads a variable:
 * - TypeScript: `process.env.X`, `process.env["X"]`, `Bun.env.X`, `import.meta.env.X`; the keys
 *   of the zod env shapes parsed by core/env.ts (`X: z.…` or `X: envPort(…)`, `envBoolean`…,
 *   as in producer/src/config.ts, processor/src/config.ts, core/kafka.ts, core/tracing.ts and
 *   each channel plugin's `env`); and cross-variable checks reading the raw env (`raw.X`).
 * - Bash: `${X:-…}` and the other defaulting expansions, and `$X` of a variable the script
 *   (or scripts/lib.sh, which every script sources) never assigns. Upper-case names only:
 *   the scripts' own locals are lower case.
 * Documented means: named in backticks in the first cell of a table row in the reference.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";

/** The repository root. */
export const ROOT = join(import.meta.dir, "..", "..");

/** A source file: its path (relative to the root) and text. */
export interface Source {
  path: string;
  text: string;
  kind: "typescript" | "bash";
}

const NAME = "[A-Z_][A-Z0-9_]*";
const TS_READS = [
  new RegExp(`\\b(?:process\\.env|Bun\\.env|import\\.meta\\.env)\\??\\.(${NAME})\\b`, "g"),
  new RegExp(
    `\\b(?:process\\.env|Bun\\.env|import\\.meta\\.env)\\??\\.?\\[\\s*["'\`](${NAME})["'\`]\\s*\\]`,
    "g",
  ),
  // A key of a zod env shape: its value is a zod schema or one of core/env.ts's env* helpers.
  new RegExp(`(?<![\\w.])(${NAME})\\s*:\\s*(?:z\\s*\\.|env[A-Z]\\w*\\b)`, "g"),
  // EnvCheck functions (core/env.ts) read the raw environment as `raw`.
  new RegExp(`\\braw\\??\\.(${NAME})\\b`, "g"),
  new RegExp(`\\braw\\[\\s*["'\`](${NAME})["'\`]\\s*\\]`, "g"),
];

/**
 * Where an env shape's object literal starts: `…EnvShape = {` or `z.object({`. (The channel
 * plugins' `env: {` is found by its values; an `env: {` passed to a child process is written,
 * not read.)
 */
const SHAPE_START = /(?:EnvShape\s*=\s*|\bz\.object\(\s*)\{/g;

/** The keys at the top level of the object literal whose `{` is at `open`. */
function topLevelKeys(text: string, open: number): string[] {
  const keys: string[] = [];
  const key = new RegExp(`^(${NAME})\\s*:`);
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    const c = text[i] as string;
    if (c === "{" || c === "(" || c === "[") depth++;
    else if (c === "}" || c === ")" || c === "]") {
      if (--depth === 0) break;
    } else if (depth === 1 && /[\s,{]/.test(text[i - 1] ?? "")) {
      const m = key.exec(text.slice(i, i + 80));
      if (m) keys.push(m[1] as string);
    }
  }
  return keys;
}

/** Variables a TypeScript source reads. */
export function typeScriptReads(text: string): Set<string> {
  const names = new Set<string>();
  for (const re of TS_READS) for (const m of text.matchAll(re)) names.add(m[1] as string);
  for (const m of text.matchAll(SHAPE_START)) {
    for (const k of topLevelKeys(text, m.index + m[0].length - 1)) names.add(k);
  }
  return names;
}

/** Variables bash itself sets: reading them reads no configuration. */
export const BASH_BUILTINS = new Set([
  "BASH_SOURCE",
  "BASH_REMATCH",
  "BASHPID",
  "EUID",
  "HOSTNAME",
  "LINENO",
  "OLDPWD",
  "PIPESTATUS",
  "PPID",
  "PWD",
  "RANDOM",
  "SECONDS",
  "UID",
]);

const ASSIGNED = [
  new RegExp(
    `(?:^|[\\s;&|(])(?:export\\s+|readonly\\s+|local\\s+|declare(?:\\s+-\\w+)*\\s+)?(${NAME})\\+?=`,
    "gm",
  ),
  new RegExp(`\\b(?:for|read(?:\\s+-\\w+)*)\\s+(${NAME})\\b`, "g"),
  new RegExp(`\\b(?:local|export|unset)\\s+((?:${NAME}\\s*)+)(?:$|;)`, "gm"),
];

/** Upper-case variables a bash script assigns (then reading them reads the script's value). */
export function bashAssigned(text: string): Set<string> {
  const names = new Set<string>();
  for (const re of ASSIGNED) {
    for (const m of text.matchAll(re)) {
      for (const n of (m[1] as string).split(/\s+/)) if (n) names.add(n);
    }
  }
  return names;
}

/**
 * Variables a bash script reads from its environment.
 * @param alsoAssigned variables assigned before the script runs (by scripts/lib.sh it sources)
 */
export function bashReads(
  text: string,
  alsoAssigned: ReadonlySet<string> = new Set(),
): Set<string> {
  const code = text
    .split("\n")
    .filter((line) => !/^\s*#/.test(line))
    .join("\n");
  const assigned = bashAssigned(code);
  const names = new Set<string>();
  for (const m of code.matchAll(new RegExp(`\\$\\{(${NAME})(:?[-=?+])`, "g"))) {
    names.add(m[1] as string);
  }
  for (const m of code.matchAll(new RegExp(`\\$\\{?(${NAME})\\b`, "g"))) {
    const n = m[1] as string;
    if (!assigned.has(n) && !alsoAssigned.has(n) && !BASH_BUILTINS.has(n)) names.add(n);
  }
  // Inline programs (bun -e '…') read the environment too.
  for (const n of typeScriptReads(code)) names.add(n);
  return names;
}

/** The bash files a script sources (`. "…/lib.sh"`), as path tails. */
function sourcedTails(text: string): string[] {
  const tails: string[] = [];
  for (const m of text.matchAll(/^\s*(?:\.|source)\s+(.*)$/gm)) {
    for (const t of (m[1] as string).matchAll(/[\w.-]+(?:\/[\w.-]+)*\.sh\b/g)) tails.push(t[0]);
  }
  return tails;
}

/**
 * Variables the sources read: name → the paths that read it. A bash file sourced by another
 * (scripts/lib.sh, scripts/kafka/cluster.sh) shares its assignments with the files it is
 * sourced by, both ways.
 */
export function variablesRead(sources: readonly Source[]): Map<string, string[]> {
  const bash = sources.filter((s) => s.kind === "bash");
  const links = new Map(bash.map((s) => [s.path, new Set<string>()]));
  for (const s of bash) {
    for (const tail of sourcedTails(s.text)) {
      for (const t of bash) {
        if (t.path === tail || t.path.endsWith(`/${tail}`) || tail.endsWith(`/${t.path}`)) {
          links.get(s.path)?.add(t.path);
          links.get(t.path)?.add(s.path);
        }
      }
    }
  }
  // Files linked by sourcing, directly or not, run in one shell: they share assignments.
  const shared = new Map<string, Set<string>>();
  for (const s of bash) {
    const seen = new Set([s.path]);
    const queue = [s.path];
    for (let p = queue.pop(); p !== undefined; p = queue.pop()) {
      for (const q of links.get(p) ?? []) {
        if (seen.has(q)) continue;
        seen.add(q);
        queue.push(q);
      }
    }
    const names = new Set<string>();
    for (const b of bash) if (seen.has(b.path)) for (const n of bashAssigned(b.text)) names.add(n);
    shared.set(s.path, names);
  }
  const read = new Map<string, string[]>();
  for (const s of sources) {
    const names =
      s.kind === "typescript" ? typeScriptReads(s.text) : bashReads(s.text, shared.get(s.path));
    for (const n of names) read.set(n, [...(read.get(n) ?? []), s.path]);
  }
  return read;
}

/**
 * The variables a reference documents: each backticked upper-case name in the first cell of
 * a table row (`| \`PORT\` / \`HOST\` | … |`). Prose mentions do not count.
 */
export function documentedVariables(markdown: string): Set<string> {
  const names = new Set<string>();
  for (const line of markdown.split("\n")) {
    const row = /^\|([^|]*)\|/.exec(line);
    if (!row) continue;
    for (const m of (row[1] as string).matchAll(new RegExp(`\`(${NAME})\``, "g"))) {
      names.add(m[1] as string);
    }
  }
  return names;
}

/** What the check ignores or accepts without a read, each with its reason. */
export interface Exemptions {
  /** Read by the code but not configuration: OS, runtime and internal hand-offs. */
  notConfiguration: ReadonlySet<string>;
  /** Documented, read by a library (an SDK) rather than by name in this code. */
  readByLibraries: ReadonlySet<string>;
}

/** Problems: read but undocumented, documented but unread. */
export function configurationProblems(
  read: ReadonlyMap<string, readonly string[]>,
  documented: ReadonlySet<string>,
  exemptions: Exemptions,
): string[] {
  const problems: string[] = [];
  for (const [name, paths] of [...read].sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (exemptions.notConfiguration.has(name) || documented.has(name)) continue;
    problems.push(
      `${name}: read by ${paths.join(", ")} but not documented in docs/configuration.md`,
    );
  }
  for (const name of [...documented].sort()) {
    if (read.has(name) || exemptions.readByLibraries.has(name)) continue;
    problems.push(`${name}: documented in docs/configuration.md but read nowhere`);
  }
  return problems;
}

const SKIP_DIRS = new Set(["node_modules", "dist", "coverage"]);
const ROOTS = [
  "core",
  "producer",
  "processor",
  "scripts",
  "test",
  "kustomize",
  "infra",
  "docs",
  ".ci",
];

function walk(dir: string, out: string[]) {
  for (const name of readdirSync(dir)) {
    if (SKIP_DIRS.has(name) || (name.startsWith(".") && name !== ".ci")) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path, out);
    else out.push(path);
  }
}

/** The repository's TypeScript and bash sources, except those listed in `exclude`. */
export function repositorySources(exclude: readonly string[] = []): Source[] {
  const files: string[] = [];
  for (const r of ROOTS) walk(join(ROOT, r), files);
  const sources: Source[] = [];
  for (const file of files) {
    const path = relative(ROOT, file);
    if (exclude.includes(path)) continue;
    if (/\.(ts|tsx|mts|mjs|js)$/.test(path)) {
      sources.push({ path, text: readFileSync(file, "utf8"), kind: "typescript" });
    } else if (/\.sh$/.test(path) || !/\.\w+$/.test(path)) {
      const text = readFileSync(file, "utf8");
      if (/^#!.*\b(bash|sh)\b/.test(text) || path.endsWith(".sh")) {
        sources.push({ path, text, kind: "bash" });
      }
    }
  }
  return sources;
}
