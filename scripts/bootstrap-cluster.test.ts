import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { helmCommand, installs } from "./bootstrap-cluster.ts";
import { parseStackEnv, stackEnvPath } from "./env-sync.ts";

const stack = parseStackEnv(readFileSync(stackEnvPath("prod"), "utf8"));

describe("bootstrap-cluster", () => {
  test("every add-on at a pinned version; the AWS-facing ones with the stack's roles", () => {
    const all = installs(stack);
    expect(all.map((i) => i.release)).toEqual([
      "karpenter",
      "keda",
      "external-secrets",
      "reloader",
      "kube-prometheus-stack",
      "argocd",
    ]);
    for (const i of all) expect(i.version).toMatch(/^\d+\.\d+\.\d+$/);
    const byName = Object.fromEntries(all.map((i) => [i.release, i]));
    expect(byName.karpenter?.identity?.roleArn).toBe(stack.karpenterRoleArn);
    expect(byName.keda?.set["podIdentity.aws.irsa.roleArn"]).toBe(stack.kedaRoleArn);
    expect(byName["external-secrets"]?.namespace).toBe("external-secrets");
    expect(byName.karpenter?.set["settings.clusterName"]).toBe("fanda-prod");
    expect(byName["kube-prometheus-stack"]?.namespace).toBe("monitoring");
  });

  test("a helm command installs idempotently, waits, and escapes the annotation key", () => {
    const cmd = helmCommand(installs(stack)[0] as never);
    expect(cmd.slice(0, 5)).toEqual([
      "helm",
      "upgrade",
      "--install",
      "karpenter",
      "oci://public.ecr.aws/karpenter/karpenter",
    ]);
    expect(cmd).toContain("--wait");
    expect(cmd).toContain(
      `serviceAccount.annotations.eks\\.amazonaws\\.com/role-arn=${stack.karpenterRoleArn}`,
    );
  });

  test.each([
    ["a missing role", { kedaRoleArn: "" }, "stack.env has no kedaRoleArn"],
    [
      "a malformed ServiceAccount",
      { karpenterServiceAccount: "karpenter" },
      "must be namespace/name",
    ],
    [
      "another ServiceAccount than the chart creates",
      { externalSecretsServiceAccount: "external-secrets/eso" },
      "the stack trusts external-secrets/eso, the chart creates external-secrets",
    ],
  ])("refuses %s", (_name, over, message) => {
    expect(() => installs({ ...stack, ...over })).toThrow(message);
  });
});
