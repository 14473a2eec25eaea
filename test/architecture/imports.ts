/**
 * The import rules of the repository, read from the code: every TypeScript file's imports
 * (Bun's transpiler scans them; relative ones are resolved to files), checked against rules
 * written as data. docs/architecture.md shows the same rules as a picture.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const ROOT = join(import.meta.dir, "..", "..");

/** One import of one file, resolved to a path relative to the repository root. */
export interface Edge {
  from: string;
  to: string;
}

/** The repository's TypeScript files (tracked or not, never node_modules or caches). */
export function sourceFiles(): string[] {
  const glob = new Bun.Glob("**/*.ts");
  return [...glob.scanSync({ cwd: ROOT, dot: false })]
    .filter((f) => !/(^|\/)(node_modules|\.cache|dist)\//.test(f))
    .sort();
}

/** The relative imports of every file, resolved. */
export function importGraph(files = sourceFiles()): Edge[] {
  const transpiler = new Bun.Transpiler({ loader: "ts" });
  const edges: Edge[] = [];
  for (const from of files) {
    const text = readFileSync(join(ROOT, from), "utf8");
    for (const imp of transpiler.scanImports(text)) {
      if (!imp.path.startsWith(".")) continue;
      const target = resolve(dirname(join(ROOT, from)), imp.path);
      edges.push({ from, to: existsSync(target) ? relative(ROOT, target) : `missing:${imp.path}` });
    }
  }
  return edges;
}

/** Test code and test support: not part of what runs in production. */
export const isTest = (f: string) =>
  /\.(test|int\.test|browser\.test|conformance)\.ts$/.test(f) ||
  /(^|\/)(fixtures|testing|conformance)(\/|\.ts$)/.test(f) ||
  f.startsWith("test/");

/** What runs in production: core, the producer and the processor, minus their tests. */
export const isRuntime = (f: string) =>
  /^(core|producer\/src|processor\/src)\//.test(f) && !isTest(f);

/** A module of a channel plugin: anything in a channel's own folder, tests aside. */
export const isChannelPlugin = (f: string) =>
  /^processor\/src\/channels\/[^/]+\/[^/]+\.ts$/.test(f) && !isTest(f);

/** The plugin folder a file belongs to (`processor/src/channels/slack/`). */
const pluginFolder = (f: string) => f.slice(0, f.lastIndexOf("/") + 1);

/** A rule: which edges break it. `transitive` rules look at everything a file loads. */
export interface Rule {
  name: string;
  transitive?: boolean;
  breaks(edge: Edge): boolean;
}

const under = (f: string, ...folders: string[]) => folders.some((d) => f.startsWith(`${d}/`));

export const RULES: Rule[] = [
  {
    name: "producer and processor never import each other",
    breaks: (e) =>
      (under(e.from, "producer") && under(e.to, "processor")) ||
      (under(e.from, "processor") && under(e.to, "producer")),
  },
  {
    name: "core imports neither the producer nor the processor",
    breaks: (e) => under(e.from, "core") && under(e.to, "producer", "processor"),
  },
  {
    name: "infra/ and kustomize/ load no runtime code, tests included",
    transitive: true,
    breaks: (e) =>
      under(e.from, "infra", "kustomize") && under(e.to, "core", "producer", "processor"),
  },
  {
    name: "no runtime module imports scripts/ or test/",
    breaks: (e) => isRuntime(e.from) && under(e.to, "scripts", "test"),
  },
  {
    name: "channel plugins import only their own folder, the channel interface and core",
    breaks: (e) =>
      isChannelPlugin(e.from) &&
      !under(e.to, "core") &&
      e.to !== "processor/src/channels/channel.ts" &&
      !(
        e.to.startsWith(pluginFolder(e.from)) &&
        !e.to.slice(pluginFolder(e.from).length).includes("/")
      ),
  },
  {
    name: "every relative import resolves to a file",
    breaks: (e) => e.to.startsWith("missing:"),
  },
];

/**
 * Edges that break `rule`. For a transitive rule, an edge anywhere in what a file loads counts
 * against the file, reported as `file -> ... -> target`.
 */
export function violations(rule: Rule, edges: Edge[]): string[] {
  if (!rule.transitive)
    return edges.filter((e) => rule.breaks(e)).map((e) => `${e.from} -> ${e.to}`);
  const out = new Map<string, Edge[]>();
  for (const e of edges) out.set(e.from, [...(out.get(e.from) ?? []), e]);
  const found: string[] = [];
  for (const start of new Set(edges.map((e) => e.from))) {
    const seen = new Set([start]);
    const queue: { file: string; path: string[] }[] = [{ file: start, path: [start] }];
    while (queue.length > 0) {
      const { file, path } = queue.shift() as { file: string; path: string[] };
      for (const e of out.get(file) ?? []) {
        if (rule.breaks({ from: start, to: e.to })) {
          found.push([...path, e.to].join(" -> "));
          continue;
        }
        if (seen.has(e.to)) continue;
        seen.add(e.to);
        queue.push({ file: e.to, path: [...path, e.to] });
      }
    }
  }
  return found;
}
