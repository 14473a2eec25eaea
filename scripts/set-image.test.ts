import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { setImage } from "./set-image.ts";

const dev = readFileSync(
  join(import.meta.dir, "..", "kustomize", "overlays", "dev", "kustomization.yaml"),
  "utf8",
);

describe("setImage", () => {
  test("sets name and tag of the processor image and changes nothing else", () => {
    const out = setImage(
      dev,
      "123456789012.dkr.ecr.ap-northeast-2.amazonaws.com/fanda-processor:3f2c1ab",
    );
    expect(out).toContain(
      "    newName: 123456789012.dkr.ecr.ap-northeast-2.amazonaws.com/fanda-processor\n",
    );
    expect(out).toContain("    newTag: 3f2c1ab\n");
    const changed = out.split("\n").filter((l, i) => l !== dev.split("\n")[i]);
    expect(changed).toHaveLength(2);
    expect(out.startsWith("# dev:")).toBe(true);
  });

  test.each([
    ["no tag", "registry/fanda-processor"],
    ["latest", "registry/fanda-processor:latest"],
    ["a digest", "registry/fanda-processor@sha256:abc"],
    ["a port, no tag", "registry:5000/fanda-processor"],
  ])("refuses %s", (_name, ref) => {
    expect(() => setImage(dev, ref)).toThrow();
  });

  test("refuses a kustomization without the image entry", () => {
    expect(() => setImage("resources:\n  - ../../base\n", "r/fanda-processor:1")).toThrow(
      /no images entry/,
    );
  });
});
