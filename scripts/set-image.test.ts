import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { releaseFile, setImage } from "./set-image.ts";

const dev = readFileSync(
  releaseFile(join(import.meta.dir, "..", "kustomize", "overlays", "dev")),
  "utf8",
);
const SHA = "3f2c1ab3f2c1ab3f2c1ab3f2c1ab3f2c1ab3f2c1";

describe("setImage", () => {
  test("sets the tag of the processor image and changes nothing else", () => {
    const out = setImage(dev, SHA);
    expect(out).toContain(`    newTag: ${SHA}\n`);
    const before = dev.split("\n");
    const changed = out.split("\n").filter((l, i) => l !== before[i]);
    expect(changed.length).toBeLessThanOrEqual(1);
    expect(out.startsWith("# The release dev runs")).toBe(true);
    expect(setImage(out, SHA)).toBe(out);
  });

  test.each([
    ["a short sha", "3f2c1ab"],
    ["latest", "latest"],
    ["a branch name", "main"],
    ["a digest", "sha256:abc"],
    ["an upper-case sha", SHA.toUpperCase()],
    ["a full reference", `registry/fanda-processor:${SHA}`],
  ])("refuses %s: CI pushes only commit SHAs", (_name, tag) => {
    expect(() => setImage(dev, tag)).toThrow(/not a full commit SHA/);
  });

  test("refuses a kustomization without the image entry, or one that sets the repository", () => {
    expect(() => setImage("resources:\n  - ../../base\n", SHA)).toThrow(/no images entry/);
    expect(() =>
      setImage(
        "images:\n  - name: fanda-processor\n    newName: elsewhere/x\n    newTag: a\n",
        SHA,
      ),
    ).toThrow(/must not set newName/);
  });
});
