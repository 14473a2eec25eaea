/**
 * The processor's Dockerfile, checked without Docker (no engine here): dockerfilelint, then
 * the rules the image must keep — pinned base images (Bun as in .bun-version), production
 * dependencies from the lockfile, a distroless non-root release stage, no HEALTHCHECK (the
 * kubelet probes), and nothing in the build context the image does not need.
 */
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { runCommand } from "../test/support/local.ts";

const root = join(import.meta.dir, "..");
const dockerfile = readFileSync(join(import.meta.dir, "Dockerfile"), "utf8");
const instructions = dockerfile
  .split("\n")
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith("#"));
const bunVersion = readFileSync(join(root, ".bun-version"), "utf8").trim();

describe("processor/Dockerfile", () => {
  test("passes dockerfilelint", async () => {
    const { stdout: out, code } = await runCommand([
      "bun",
      join(root, "node_modules", "dockerfilelint", "bin", "dockerfilelint"),
      join(import.meta.dir, "Dockerfile"),
    ]);
    expect(out).toContain("Issues: None found");
    expect(code).toBe(0);
  });

  test("pins every base image to the project's Bun version, never latest", () => {
    const froms = instructions.filter((l) => l.startsWith("FROM "));
    expect(froms.length).toBe(2);
    for (const f of froms) {
      expect(f).toMatch(
        new RegExp(
          `^FROM oven/bun:${bunVersion.replace(/\./g, "\\.")}-(slim|distroless)( AS \\w+)?$`,
        ),
      );
      expect(f).not.toContain("latest");
    }
  });

  test("installs production dependencies exactly as locked, without install scripts", () => {
    expect(instructions).toContain(
      "RUN bun install --frozen-lockfile --production --ignore-scripts",
    );
    expect(instructions).toContain("COPY patches ./patches");
  });

  test("runs as a numeric non-root user in a distroless release stage, without HEALTHCHECK", () => {
    const release = instructions.slice(instructions.findIndex((l) => l.includes("AS release")));
    expect(release[0]).toContain("distroless");
    expect(release).toContain("USER 65532:65532");
    expect(dockerfile).not.toMatch(/^HEALTHCHECK/m);
    expect(release.at(-1)).toBe('CMD ["processor/src/main.ts"]');
  });

  test("the user matches the pod's securityContext", () => {
    const deployment = readFileSync(join(root, "kustomize", "base", "deployment.yaml"), "utf8");
    expect(deployment).toContain("runAsUser: 65532");
  });

  test("keeps tests, caches, docs and secrets out of the build context", () => {
    const ignore = readFileSync(join(root, ".dockerignore"), "utf8");
    for (const entry of [".git", ".cache", "node_modules", "**/*.test.ts", ".env*"]) {
      expect(ignore.split("\n")).toContain(entry);
    }
  });

  test("copies only what exists", () => {
    for (const line of instructions.filter((l) => l.startsWith("COPY ") && !l.includes("--from"))) {
      for (const source of line.split(/\s+/).slice(1, -1)) {
        expect(existsSync(join(root, source))).toBe(true);
      }
    }
  });
});
