/**
 * The workflows and the stacks agree on where things are: the region every workflow logs in to
 * is the region of the stacks it drives (infra/Pulumi.<env>.yaml `aws:region`), and the
 * environments it deploys are the stacks that exist. A region moved in the stack configuration
 * but not in the workflows would push images and run Pulumi in the wrong place.
 */
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ENVIRONMENTS } from "../../scripts/env-sync.ts";

const ROOT = join(import.meta.dir, "..", "..");
const WORKFLOWS = join(ROOT, ".github", "workflows");

/** The `aws:region` of each stack's configuration. */
export function stackRegions(): Record<string, string> {
  return Object.fromEntries(
    ENVIRONMENTS.map((env) => {
      const file = Bun.YAML.parse(
        readFileSync(join(ROOT, "infra", `Pulumi.${env}.yaml`), "utf8"),
      ) as { config: Record<string, unknown> };
      return [env, String(file.config["aws:region"])];
    }),
  );
}

/** Every region a workflow text names (AWS_REGION settings and aws-region inputs). */
export function workflowRegions(text: string): string[] {
  return [...text.matchAll(/(?:AWS_REGION|aws-region):\s*["']?([a-z]{2}(?:-[a-z]+)+-\d)\b/g)].map(
    (m) => m[1] as string,
  );
}

/** Workflow regions that are not every stack's region. */
export function regionProblems(file: string, text: string, regions: Record<string, string>) {
  return workflowRegions(text).flatMap((r) =>
    Object.entries(regions)
      .filter(([, stackRegion]) => stackRegion !== r)
      .map(
        ([env, stackRegion]) => `${file}: logs in to ${r}, the ${env} stack is in ${stackRegion}`,
      ),
  );
}

describe("workflows and stacks", () => {
  const regions = stackRegions();
  const files = readdirSync(WORKFLOWS).filter((f) => f.endsWith(".yml"));

  test("the workflows that use AWS name its region, and it is every stack's region", () => {
    const named = files.filter(
      (f) => workflowRegions(readFileSync(join(WORKFLOWS, f), "utf8")).length > 0,
    );
    expect(named.sort()).toEqual(["deploy.yml", "infra.yml"]);
    for (const f of files)
      expect(regionProblems(f, readFileSync(join(WORKFLOWS, f), "utf8"), regions)).toEqual([]);
  });

  test("a workflow in another region than a stack is named", () => {
    expect(
      regionProblems("deploy.yml", "env:\n  AWS_REGION: us-east-1\n", { dev: "ap-northeast-2" }),
    ).toEqual(["deploy.yml: logs in to us-east-1, the dev stack is in ap-northeast-2"]);
  });

  test("infra.yml runs Pulumi for exactly the stacks that exist", () => {
    const infra = readFileSync(join(WORKFLOWS, "infra.yml"), "utf8");
    const stacks = [...infra.matchAll(/stack-name:\s*(\w+)/g)].map((m) => m[1]);
    expect([...new Set(stacks)].sort()).toEqual([...ENVIRONMENTS].sort());
    for (const env of ENVIRONMENTS) expect(infra).toContain(`bun scripts/env-sync.ts ${env}`);
  });
});
