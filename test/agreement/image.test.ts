/**
 * The image and the manifests agree: every script a container in the manifests runs is copied
 * into the release stage of processor/Dockerfile, together with every module it imports. A Job
 * whose script is missing from the image fails only in the cluster, at its first run.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { podOf, render } from "../../scripts/validate-manifests.ts";
import { type Edge, importGraph } from "../architecture/imports.ts";

const ROOT = join(import.meta.dir, "..", "..");

/** The paths the release stage copies from the build context (files or folders). */
export function copiedPaths(dockerfile: string): string[] {
  const lines = dockerfile.split("\n").map((l) => l.trim());
  const release = lines.slice(lines.findIndex((l) => /^FROM .* AS release$/.test(l)));
  return release
    .filter((l) => l.startsWith("COPY ") && !l.includes("--from"))
    .flatMap((l) => l.split(/\s+/).slice(1, -1))
    .map((p) => p.replace(/\/$/, ""));
}

const graph = importGraph();

/** A file and every relative module it imports, transitively (paths relative to the root). */
export function importClosure(entry: string, edges: Edge[] = graph): string[] {
  const seen = new Set([entry]);
  const queue = [entry];
  for (let file = queue.shift(); file !== undefined; file = queue.shift()) {
    for (const e of edges) {
      if (e.from !== file || seen.has(e.to)) continue;
      seen.add(e.to);
      queue.push(e.to);
    }
  }
  return [...seen].sort();
}

/** Files of `closure` no COPY covers. */
export function missingFromImage(closure: string[], copied: string[]): string[] {
  return closure.filter((f) => !copied.some((c) => f === c || f.startsWith(`${c}/`)));
}

describe("the image holds what the manifests run", async () => {
  const dockerfile = readFileSync(join(ROOT, "processor", "Dockerfile"), "utf8");
  const copied = copiedPaths(dockerfile);
  const { objects } = await render("base");
  const entries = objects.flatMap((o) =>
    (podOf(o)?.containers ?? []).map((c) => ({
      where: `${o.kind}/${o.metadata?.name}`,
      script: String((c.args as string[] | undefined)?.[0] ?? "processor/src/main.ts"),
    })),
  );

  test("the manifests run the processor and the two Job scripts", () => {
    expect(entries.map((e) => e.script).sort()).toEqual([
      "processor/src/main.ts",
      "scripts/replay.ts",
      "scripts/topics.ts",
    ]);
  });

  test.each(entries.map((e) => [e.where, e.script]))(
    "%s: %s and its imports are in the image",
    (_, script) => {
      expect(missingFromImage(importClosure(script), copied)).toEqual([]);
    },
  );

  test("the check notices a script the Dockerfile does not copy", () => {
    const without = copied.filter((c) => c !== "scripts/topics.ts");
    expect(missingFromImage(importClosure("scripts/topics.ts"), without)).toEqual([
      "scripts/topics.ts",
    ]);
    expect(
      missingFromImage(importClosure("scripts/replay.ts"), ["scripts/replay.ts"]).length,
    ).toBeGreaterThan(3);
  });
});
