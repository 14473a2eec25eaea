/**
 * Sets the processor image tag an environment runs — what `kustomize edit set image` does, as a
 * small, tested edit of kustomize/overlays/<env>/release/kustomization.yaml that keeps the
 * file's comments and order. The repository part of the image comes from the environment's
 * stack.env (the stack's ECR repository), so only the tag is set here, and only to a tag CI
 * pushes: a full commit SHA.
 *
 *   bun scripts/set-image.ts kustomize/overlays/dev <40-hex commit sha>
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** The image name the base uses and the release kustomization retags. */
export const IMAGE_NAME = "fanda-processor";

/** The only tags CI pushes (deploy.yml tags each image with its commit). */
export const RELEASE_TAG = /^[0-9a-f]{40}$/;

/**
 * Returns `kustomization` with the `images:` entry for `name` set to `newTag: tag`.
 * @throws Error when the tag is not a full commit SHA or the entry is missing
 */
export function setImage(kustomization: string, tag: string, name = IMAGE_NAME): string {
  if (!RELEASE_TAG.test(tag)) {
    throw new Error(`tag ${JSON.stringify(tag)} is not a full commit SHA (the tags CI pushes)`);
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
      throw new Error(
        `the ${name} entry must not set newName: the repository comes from stack.env`,
      );
    }
    if (/^\s*newTag:/.test(line)) {
      lines[i] = `${" ".repeat(indent)}newTag: ${tag}`;
      seen++;
    }
  }
  if (seen !== 1) throw new Error(`the ${name} entry needs exactly one newTag line`);
  return lines.join("\n");
}

/** The file an environment's release tag lives in. */
export function releaseFile(overlayDir: string): string {
  return join(overlayDir, "release", "kustomization.yaml");
}

if (import.meta.main) {
  const [dir, tag] = process.argv.slice(2);
  if (!dir || !tag || process.argv.length > 4) {
    console.error("usage: bun scripts/set-image.ts <overlay dir> <40-hex commit sha>");
    process.exit(2);
  }
  const file = releaseFile(dir);
  try {
    writeFileSync(file, setImage(readFileSync(file, "utf8"), tag));
  } catch (err) {
    console.error(`${file}: ${(err as Error).message}`);
    process.exit(1);
  }
  console.log(`${file}: ${IMAGE_NAME} → ${tag}`);
}
