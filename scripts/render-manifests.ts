/**
 * Renders the typed manifests (kustomize/src/manifests.ts) to YAML under kustomize/.
 *
 *   bun scripts/render-manifests.ts          write the files
 *   bun scripts/render-manifests.ts --check  exit 1 when a committed file differs
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { manifests, renderFile } from "../kustomize/src/manifests.ts";

const dir = join(import.meta.dir, "..", "kustomize");

/** Files whose committed content differs from what the code renders. */
export function staleManifests(): string[] {
  return manifests()
    .filter((f) => {
      let committed = "";
      try {
        committed = readFileSync(join(dir, f.path), "utf8");
      } catch {
        return true;
      }
      return committed !== renderFile(f);
    })
    .map((f) => `kustomize/${f.path}`);
}

if (import.meta.main) {
  if (process.argv.includes("--check")) {
    const stale = staleManifests();
    if (stale.length > 0) {
      console.error(`out of date (run bun scripts/render-manifests.ts): ${stale.join(", ")}`);
      process.exit(1);
    }
    console.log("manifests are up to date");
  } else {
    for (const f of manifests()) writeFileSync(join(dir, f.path), renderFile(f));
    console.log(`rendered ${manifests().length} files under kustomize/`);
  }
}
