/**
 * Sets the processor image of an overlay — what `kustomize edit set image` does, as a small,
 * tested edit that keeps the file's comments and order.
 *
 *   bun scripts/set-image.ts kustomize/overlays/dev <registry>/fanda-processor:<tag>
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** The image name the base uses and overlays replace. */
export const IMAGE_NAME = "fanda-processor";

/**
 * Returns `kustomization` with the `images:` entry for `name` set to `newName:newTag`.
 * @throws Error when the entry is missing or the reference has no tag
 */
export function setImage(kustomization: string, reference: string, name = IMAGE_NAME): string {
  const at = reference.lastIndexOf(":");
  if (at < 0 || reference.includes("@") || at < reference.lastIndexOf("/")) {
    throw new Error(`expected <repository>:<tag>, got ${reference}`);
  }
  const newName = reference.slice(0, at);
  const newTag = reference.slice(at + 1);
  if (!/^[\w][\w.-]{0,127}$/.test(newTag) || newTag === "latest") {
    throw new Error(`tag ${JSON.stringify(newTag)} is not a pinned tag`);
  }
  const lines = kustomization.split("\n");
  const start = lines.findIndex((l) => new RegExp(`^\\s*- name: ${name}\\s*$`).test(l));
  if (start < 0) throw new Error(`no images entry named ${name}`);
  const indent = (lines[start]?.match(/^\s*/)?.[0].length ?? 0) + 2;
  let seen = 0;
  for (let i = start + 1; i < lines.length; i++) {
    const line = lines[i] ?? "";
    const lineIndent = line.match(/^\s*/)?.[0].length ?? 0;
    if (line.trim() !== "" && lineIndent < indent) break;
    if (/^\s*newName:/.test(line)) {
      lines[i] = `${" ".repeat(indent)}newName: ${newName}`;
      seen++;
    } else if (/^\s*newTag:/.test(line)) {
      lines[i] = `${" ".repeat(indent)}newTag: ${JSON.stringify(newTag).slice(1, -1)}`;
      seen++;
    }
  }
  if (seen !== 2) throw new Error(`the ${name} entry needs newName and newTag lines`);
  return lines.join("\n");
}

if (import.meta.main) {
  const [dir, reference] = process.argv.slice(2);
  if (!dir || !reference) {
    console.error("usage: bun scripts/set-image.ts <overlay dir> <repository>:<tag>");
    process.exit(2);
  }
  const file = join(dir, "kustomization.yaml");
  writeFileSync(file, setImage(readFileSync(file, "utf8"), reference));
  console.log(`${file}: ${IMAGE_NAME} → ${reference}`);
}
