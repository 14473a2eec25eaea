/** The Kubernetes manifests: rendered from code, up to date, schema-valid, within policy. */
import { describe, expect, test } from "bun:test";
import { staleManifests } from "../../scripts/render-manifests.ts";
import {
  check,
  type K8sObject,
  podOf,
  render,
  stackOf,
  validateAll,
} from "../../scripts/validate-manifests.ts";
import { APP, PLACEHOLDER } from "./manifests.ts";

// biome-ignore lint/suspicious/noExplicitAny: the tests poke into rendered YAML of many shapes.
type Loose = Record<string, any>;

const find = (objs: K8sObject[], kind: string, name?: string) =>
  objs.find((o) => o.kind === kind && (!name || o.metadata?.name === name)) as Loose;
const processorConfig = (objs: K8sObject[]) =>
  objs.find((o) => o.kind === "ConfigMap" && o.metadata?.name?.startsWith(`${APP.name}-`)) as Loose;

describe("manifests", () => {
  test("the committed YAML is exactly what the code renders", () => {
    expect(staleManifests()).toEqual([]);
  });

  test("every kustomization renders without warnings, every object is valid and within policy", async () => {
    const { problems, counts } = await validateAll();
    expect(problems).toEqual([]);
    expect(counts).toEqual({
      base: 17,
      "base/monitoring": 2,
      "overlays/dev": 17,
      "overlays/prod": 17,
      "platform/dev": 3,
      "platform/prod": 3,
      "argocd/dev": 3,
      "argocd/prod": 3,
    });
  }, 60_000);

  test("overlays differ where environments differ: namespace, scaling, resources, role, image", async () => {
    const dev = (await render("overlays/dev")).objects;
    const prod = (await render("overlays/prod")).objects;
    expect(find(dev, "Deployment").metadata.namespace).toBe("fanda-dev");
    expect(find(prod, "Deployment").metadata.namespace).toBe("fanda");
    expect(find(dev, "ScaledObject").spec.maxReplicaCount).toBe(3);
    expect(find(prod, "ScaledObject").spec).toMatchObject({
      minReplicaCount: 3,
      maxReplicaCount: Number(stackOf("overlays/prod")?.partitions),
    });
    expect(find(prod, "Deployment").spec.template.spec.containers[0].resources.limits.memory).toBe(
      "512Mi",
    );
    expect(processorConfig(dev).data.LOG_LEVEL).toBe("debug");
    expect(processorConfig(prod).data.LOG_LEVEL).toBe("info");
    expect(find(dev, "Deployment").metadata.labels["fanda.dev/environment"]).toBe("dev");
    for (const [objs, env] of [
      [dev, "dev"],
      [prod, "prod"],
    ] as const) {
      const stack = stackOf(`overlays/${env}`) ?? {};
      expect(
        find(objs, "ServiceAccount", APP.name).metadata.annotations["eks.amazonaws.com/role-arn"],
      ).toBe(stack.processorRoleArn);
      expect(find(objs, "Deployment").spec.template.spec.containers[0].image).toStartWith(
        `${stack.ecrRepository}:`,
      );
    }
  });

  test("the version the processor reports is the image tag the release sets", async () => {
    const dev = (await render("overlays/dev")).objects;
    const d = find(dev, "Deployment");
    const tag = String(d.spec.template.spec.containers[0].image).split(":").pop();
    expect(tag).toMatch(/^[0-9a-f]{40}$/);
    expect(d.spec.template.metadata.labels["app.kubernetes.io/version"]).toBe(tag);
    expect(d.metadata.labels["app.kubernetes.io/version"]).toBe(tag);
  });

  test("a config change renames the ConfigMap, so the pods roll", async () => {
    const dev = (await render("overlays/dev")).objects;
    const prod = (await render("overlays/prod")).objects;
    const ref = (objs: K8sObject[]) =>
      find(objs, "Deployment").spec.template.spec.containers[0].envFrom[0].configMapRef.name;
    expect(ref(dev)).toMatch(/^fanda-processor-[a-z0-9]{10}$/);
    expect(ref(dev)).not.toBe(ref(prod));
  });

  describe("the checks catch what they are for", () => {
    const base = async () => structuredClone((await render("base")).objects);
    const env = async (target = "overlays/dev") => structuredClone((await render(target)).objects);

    test("a schema violation in a custom resource", async () => {
      const objects = await base();
      find(objects, "ScaledObject").spec.minReplicaCount = "two";
      expect(check("base", objects).join("\n")).toContain("ScaledObject/fanda-processor: schema");
    });

    test("a Karpenter NodePool from the old v1beta1 shape", async () => {
      const objects = await env("platform/dev");
      find(objects, "NodePool").spec.disruption.consolidationPolicy = "WhenUnderutilized";
      expect(check("platform/dev", objects).join("\n")).toContain(
        "NodePool/fanda-workloads: schema",
      );
    });

    test("a container that runs as root with a writable filesystem, no limits and a latest tag", async () => {
      const objects = await base();
      const d = find(objects, "Deployment");
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

    test("more consumers than the stack's partitions, and a grace period shorter than the drain", async () => {
      const objects = await env();
      find(objects, "ScaledObject").spec.maxReplicaCount = 12;
      find(objects, "Deployment").spec.template.spec.terminationGracePeriodSeconds = 10;
      const problems = check("overlays/dev", objects, stackOf("overlays/dev")).join("\n");
      expect(problems).toContain("maxReplicaCount 12 is above the 6 partitions");
      expect(problems).toContain(
        "terminationGracePeriodSeconds 10 is not above the drain time 25s",
      );
    });

    test("a value an environment did not fill in", async () => {
      const objects = await env();
      find(objects, "NetworkPolicy", "fanda-default").spec.egress[1].to[0].ipBlock.cidr =
        PLACEHOLDER;
      expect(check("overlays/dev", objects, stackOf("overlays/dev")).join("\n")).toContain(
        `NetworkPolicy/fanda-default: still has a ${PLACEHOLDER} value`,
      );
    });

    test("a pod that mounts the API token, a Job image from elsewhere or with a tag CI never pushes", async () => {
      const objects = await env();
      find(objects, "Job", APP.topics).spec.template.spec.automountServiceAccountToken = true;
      const replay = find(objects, "CronJob", APP.replay);
      replay.spec.jobTemplate.spec.template.spec.containers[0].image =
        "docker.io/someone/fanda:0123";
      expect(podOf(replay as K8sObject)?.containers?.[0]?.image).toBe(
        "docker.io/someone/fanda:0123",
      );
      const d = find(objects, "Deployment");
      d.spec.template.spec.containers[0].image = d.spec.template.spec.containers[0].image.replace(
        /:[0-9a-f]{40}$/,
        ":dev",
      );
      const problems = check("overlays/dev", objects, stackOf("overlays/dev")).join("\n");
      expect(problems).toContain("Job/fanda-topics: mounts a Kubernetes API token");
      expect(problems).toContain(
        "CronJob/fanda-replay container replay: image is not from the stack's repository",
      );
      expect(problems).toContain("container processor: image tag is not a commit SHA");
      expect(problems).toContain("version label is not the image tag dev");
    });

    test("replicas set next to KEDA, a ConfigMap without hash, a Secret change that would not roll", async () => {
      const objects = await env();
      const d = find(objects, "Deployment");
      d.spec.replicas = 2;
      const cm = processorConfig(objects);
      delete cm.metadata.annotations["argocd.argoproj.io/sync-options"];
      d.spec.template.spec.containers[0].envFrom[0].configMapRef.name = APP.name;
      delete d.metadata.annotations[APP.reloadAnnotation];
      const problems = check("overlays/dev", objects, stackOf("overlays/dev")).join("\n");
      expect(problems).toContain("sets replicas although KEDA owns the count");
      expect(problems).toContain("ConfigMap fanda-processor has no content hash");
      cm.metadata.name = APP.name;
      expect(check("overlays/dev", objects, stackOf("overlays/dev")).join("\n")).toContain(
        "ConfigMap fanda-processor would be pruned before the rollout finishes",
      );
      expect(problems).toContain("a change of Secret fanda-processor-secrets would not roll");
    });

    test("a PreSync hook that needs what the sync creates after it", async () => {
      const objects = await env();
      const sa = find(objects, "ServiceAccount", APP.topics);
      delete sa.metadata.annotations["argocd.argoproj.io/hook"];
      find(objects, "Job", APP.topics).spec.template.spec.containers[0].envFrom = [
        { configMapRef: { name: APP.name } },
      ];
      const problems = check("overlays/dev", objects, stackOf("overlays/dev")).join("\n");
      expect(problems).toContain(
        "Job/fanda-topics: PreSync hook runs as fanda-topics, which is not a PreSync hook of an earlier wave",
      );
      expect(problems).toContain("Job/fanda-topics: PreSync hook reads envFrom");
    });

    test("an alert that hard-codes a namespace", async () => {
      const objects = structuredClone((await render("base/monitoring")).objects);
      const rule = find(objects, "PrometheusRule");
      rule.spec.groups[0].rules[0].expr = 'up{namespace="fanda"} == 0';
      expect(check("base/monitoring", objects).join("\n")).toContain("hard-codes a namespace");
    });
  });
});
