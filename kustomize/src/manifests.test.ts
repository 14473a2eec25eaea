/** The Kubernetes manifests: rendered from code, up to date, schema-valid, within policy. */
import { describe, expect, test } from "bun:test";
import { staleManifests } from "../../scripts/render-manifests.ts";
import { check, render, validateAll } from "../../scripts/validate-manifests.ts";
import { APP, manifests } from "./manifests.ts";

// biome-ignore lint/suspicious/noExplicitAny: the tests poke into rendered YAML of many shapes.
type Loose = Record<string, any>;

describe("manifests", () => {
  test("the committed YAML is exactly what the code renders", () => {
    expect(staleManifests()).toEqual([]);
  });

  test("every kustomization renders without warnings, every object is valid and within policy", async () => {
    const { problems, counts } = await validateAll();
    expect(problems).toEqual([]);
    expect(counts).toEqual({
      base: 12,
      "overlays/dev": 12,
      "overlays/prod": 12,
      karpenter: 2,
      argocd: 2,
      "base/monitoring": 2,
    });
  }, 60_000);

  test("overlays differ where environments differ: namespace, scaling, resources, role, image", async () => {
    const dev = (await render("overlays/dev")).objects;
    const prod = (await render("overlays/prod")).objects;
    const find = (objs: typeof dev, kind: string) => objs.find((o) => o.kind === kind) as Loose;
    expect(find(dev, "Deployment").metadata.namespace).toBe("fanda-dev");
    expect(find(prod, "Deployment").metadata.namespace).toBe("fanda");
    expect(find(dev, "ScaledObject").spec.maxReplicaCount).toBe(3);
    expect(find(prod, "ScaledObject").spec).toMatchObject({
      minReplicaCount: 3,
      maxReplicaCount: APP.partitions,
    });
    expect(find(prod, "Deployment").spec.template.spec.containers[0].resources.limits.memory).toBe(
      "512Mi",
    );
    expect(
      find(prod, "ServiceAccount").metadata.annotations["eks.amazonaws.com/role-arn"],
    ).toContain("fanda-prod");
    expect(find(prod, "Deployment").spec.template.spec.containers[0].image).toMatch(
      /^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com\/fanda-processor:[\w.-]+$/,
    );
    expect(find(dev, "Deployment").metadata.labels["fanda.dev/environment"]).toBe("dev");
  });

  test("ArgoCD: dev syncs automatically, prod does not; both ignore KEDA's replica count", () => {
    const apps = manifests().find((f) => f.path === "argocd/applications.yaml")?.objects as Loose[];
    const [dev, prod] = apps;
    expect(dev?.spec.syncPolicy.automated).toEqual({ prune: true, selfHeal: true });
    expect(prod?.spec.syncPolicy.automated).toBeUndefined();
    for (const app of apps) {
      expect(app.spec.ignoreDifferences).toEqual([
        { group: "apps", kind: "Deployment", jsonPointers: ["/spec/replicas"] },
      ]);
    }
  });

  describe("the checks catch what they are for", () => {
    const base = async () => structuredClone((await render("base")).objects);

    test("a schema violation in a custom resource", async () => {
      const objects = await base();
      const so = objects.find((o) => o.kind === "ScaledObject") as Loose;
      so.spec.minReplicaCount = "two";
      expect(check("base", objects).join("\n")).toContain("ScaledObject/fanda-processor: schema");
    });

    test("a Karpenter NodePool from the old v1beta1 shape", () => {
      const pool = manifests().find((f) => f.path === "karpenter/nodepool.yaml")
        ?.objects[0] as Loose;
      const broken = structuredClone(pool);
      broken.spec.disruption.consolidationPolicy = "WhenUnderutilized"; // v1beta1's name, gone in v1
      expect(check("karpenter", [broken as never]).join("\n")).toContain(
        "NodePool/fanda-workloads: schema",
      );
    });

    test("a container that runs as root with a writable filesystem, no limits and a latest tag", async () => {
      const objects = await base();
      const d = objects.find((o) => o.kind === "Deployment") as Loose;
      const pod = d.spec.template.spec;
      pod.securityContext.runAsNonRoot = false;
      const c = pod.containers[0];
      c.securityContext = {};
      c.resources = {};
      c.image = "fanda-processor:latest";
      delete c.readinessProbe;
      c.env = c.env.filter((e: { name: string }) => e.name !== "BUN_JSC_forceRAMSize");
      const problems = check("base", objects).join("\n");
      for (const expected of [
        "not runAsNonRoot",
        "root filesystem is writable",
        "no cpu/memory limits",
        "has no pinned tag",
        "probes required",
        "BUN_JSC_forceRAMSize must follow limits.memory",
      ]) {
        expect(problems).toContain(expected);
      }
    });

    test("more consumers than partitions, and a grace period shorter than the drain", async () => {
      const objects = await base();
      (objects.find((o) => o.kind === "ScaledObject") as Loose).spec.maxReplicaCount = 12;
      (
        objects.find((o) => o.kind === "Deployment") as Loose
      ).spec.template.spec.terminationGracePeriodSeconds = 10;
      const problems = check("base", objects).join("\n");
      expect(problems).toContain("maxReplicaCount 12 is above the 6 partitions");
      expect(problems).toContain(
        "terminationGracePeriodSeconds 10 is not above the drain time 25s",
      );
    });
  });
});
