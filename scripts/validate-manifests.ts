/**
 * Validates every Kubernetes manifest offline: renders each kustomization with
 * `kubectl kustomize`, checks every object against its schema (kubernetes-models for core
 * kinds and the CRDs we use), and applies the project's policies. Used by the tests and CI.
 *
 *   bun scripts/validate-manifests.ts      prints every problem, exits 1 if there is one
 */
import { join } from "node:path";
import { Application } from "@kubernetes-models/argo-cd/argoproj.io/v1alpha1/Application";
import { EC2NodeClass } from "@kubernetes-models/karpenter/karpenter.k8s.aws/v1/EC2NodeClass";
import { NodePool } from "@kubernetes-models/karpenter/karpenter.sh/v1/NodePool";
import { ScaledObject } from "@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject";
import { TriggerAuthentication } from "@kubernetes-models/keda/keda.sh/v1alpha1/TriggerAuthentication";
import { PrometheusRule } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule";
import { ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor";
import { Deployment } from "kubernetes-models/apps/v1/Deployment";
import { NetworkPolicy } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicy";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { Service } from "kubernetes-models/v1/Service";
import { ServiceAccount } from "kubernetes-models/v1/ServiceAccount";
import { APP } from "../kustomize/src/manifests.ts";
import { runCommand } from "./local.ts";

/** Every kustomization that must render. */
export const TARGETS = [
  "base",
  "overlays/dev",
  "overlays/prod",
  "karpenter",
  "argocd",
  "base/monitoring",
];

type K8sObject = {
  apiVersion: string;
  kind: string;
  metadata?: { name?: string };
  spec?: Record<string, unknown>;
};

const SCHEMAS: Record<string, new (o: never) => { validate(): void }> = {
  "v1/ConfigMap": ConfigMap,
  "v1/Service": Service,
  "v1/ServiceAccount": ServiceAccount,
  "apps/v1/Deployment": Deployment,
  "policy/v1/PodDisruptionBudget": PodDisruptionBudget,
  "networking.k8s.io/v1/NetworkPolicy": NetworkPolicy,
  "monitoring.coreos.com/v1/ServiceMonitor": ServiceMonitor,
  "monitoring.coreos.com/v1/PrometheusRule": PrometheusRule,
  "keda.sh/v1alpha1/ScaledObject": ScaledObject,
  "keda.sh/v1alpha1/TriggerAuthentication": TriggerAuthentication,
  "karpenter.sh/v1/NodePool": NodePool,
  "karpenter.k8s.aws/v1/EC2NodeClass": EC2NodeClass,
  "argoproj.io/v1alpha1/Application": Application,
};

/** Kinds with no published schema here; checked by the policies below instead. */
const NO_SCHEMA = new Set(["external-secrets.io/v1/ExternalSecret"]);

/** Renders one kustomization; kubectl's warnings count as problems. */
export async function render(
  target: string,
): Promise<{ objects: K8sObject[]; problems: string[] }> {
  const kubectl = Bun.which("kubectl");
  if (!kubectl)
    return { objects: [], problems: ["kubectl is not installed (it renders the kustomizations)"] };
  const {
    stdout: out,
    stderr: err,
    code,
  } = await runCommand([kubectl, "kustomize", join(import.meta.dir, "..", "kustomize", target)]);
  const problems: string[] = [];
  if (code !== 0) problems.push(`${target}: kubectl kustomize failed: ${err.trim()}`);
  else if (err.trim()) problems.push(`${target}: kubectl kustomize warned: ${err.trim()}`);
  const parsed = code === 0 ? Bun.YAML.parse(out) : [];
  const objects = (Array.isArray(parsed) ? parsed : [parsed]).filter(Boolean) as K8sObject[];
  return { objects, problems };
}

/** Schema and policy problems of rendered objects (empty when all is well). */
export function check(target: string, objects: K8sObject[]): string[] {
  const problems: string[] = [];
  const where = (o: K8sObject) => `${target}: ${o.kind}/${o.metadata?.name ?? "?"}`;
  for (const o of objects) {
    const key = `${o.apiVersion}/${o.kind}`;
    const Model = SCHEMAS[key];
    if (Model) {
      try {
        new Model(o as never).validate();
      } catch (err) {
        problems.push(`${where(o)}: schema: ${(err as Error).message}`);
      }
    } else if (!NO_SCHEMA.has(key)) {
      problems.push(`${where(o)}: no schema to validate ${key} against`);
    }
  }
  const configMap = objects.find((o) => o.kind === "ConfigMap" && o.metadata?.name === APP.name) as
    | { data?: Record<string, string> }
    | undefined;
  for (const o of objects.filter((x) => x.kind === "Deployment")) {
    const pod = (o.spec?.template as { spec?: Record<string, unknown> } | undefined)?.spec ?? {};
    const podSecurity = (pod.securityContext ?? {}) as Record<string, unknown>;
    const containers = (pod.containers ?? []) as Record<string, unknown>[];
    for (const c of containers) {
      const name = `${where(o)} container ${String(c.name)}`;
      const sc = (c.securityContext ?? {}) as Record<string, unknown>;
      if (sc.runAsNonRoot !== true && podSecurity.runAsNonRoot !== true)
        problems.push(`${name}: not runAsNonRoot`);
      if (sc.readOnlyRootFilesystem !== true) problems.push(`${name}: root filesystem is writable`);
      if (sc.allowPrivilegeEscalation !== false)
        problems.push(`${name}: allows privilege escalation`);
      const drop = ((sc.capabilities ?? {}) as { drop?: string[] }).drop ?? [];
      if (!drop.includes("ALL")) problems.push(`${name}: capabilities not dropped`);
      const resources = (c.resources ?? {}) as {
        limits?: Record<string, string>;
        requests?: Record<string, string>;
      };
      if (!resources.limits?.memory || !resources.limits?.cpu)
        problems.push(`${name}: no cpu/memory limits`);
      if (!resources.requests?.memory || !resources.requests?.cpu)
        problems.push(`${name}: no cpu/memory requests`);
      if (!c.livenessProbe || !c.readinessProbe)
        problems.push(`${name}: liveness and readiness probes required`);
      const env = (c.env ?? []) as {
        name: string;
        valueFrom?: { resourceFieldRef?: { resource?: string } };
      }[];
      const ramSize = env.find((e) => e.name === "BUN_JSC_forceRAMSize");
      if (ramSize?.valueFrom?.resourceFieldRef?.resource !== "limits.memory")
        problems.push(`${name}: BUN_JSC_forceRAMSize must follow limits.memory (GC pacing)`);
      const image = String(c.image ?? "");
      const tag = image.includes("@") ? "digest" : image.slice(image.lastIndexOf(":") + 1);
      if (!image.includes(":") || tag === "latest" || image.endsWith(":")) {
        problems.push(`${name}: image ${image} has no pinned tag`);
      }
    }
    const grace = Number(pod.terminationGracePeriodSeconds ?? 30);
    const drain = Number(configMap?.data?.SHUTDOWN_TIMEOUT_MS ?? APP.shutdownTimeoutMs) / 1000;
    if (!(grace > drain))
      problems.push(
        `${where(o)}: terminationGracePeriodSeconds ${grace} is not above the drain time ${drain}s`,
      );
  }
  for (const o of objects.filter((x) => x.kind === "ScaledObject")) {
    const min = Number(o.spec?.minReplicaCount ?? 0);
    const max = Number(o.spec?.maxReplicaCount ?? 100);
    if (max > APP.partitions)
      problems.push(
        `${where(o)}: maxReplicaCount ${max} is above the ${APP.partitions} partitions`,
      );
    if (min > max)
      problems.push(`${where(o)}: minReplicaCount ${min} is above maxReplicaCount ${max}`);
  }
  for (const o of objects.filter((x) => x.kind === "ExternalSecret")) {
    const spec = (o.spec ?? {}) as {
      secretStoreRef?: { name?: string };
      target?: { name?: string };
      data?: unknown[];
    };
    if (
      !spec.secretStoreRef?.name ||
      !spec.target?.name ||
      !Array.isArray(spec.data) ||
      spec.data.length === 0
    ) {
      problems.push(`${where(o)}: needs secretStoreRef, target and data`);
    }
  }
  return problems;
}

/** Renders and checks every target. */
export async function validateAll(): Promise<{
  problems: string[];
  counts: Record<string, number>;
}> {
  const problems: string[] = [];
  const counts: Record<string, number> = {};
  for (const target of TARGETS) {
    const r = await render(target);
    counts[target] = r.objects.length;
    problems.push(...r.problems, ...check(target, r.objects));
  }
  for (const file of [
    "base",
    "overlays/dev",
    "overlays/prod",
    "karpenter",
    "argocd",
    "base/monitoring",
  ]) {
    const text = await Bun.file(
      join(import.meta.dir, "..", "kustomize", file, "kustomization.yaml"),
    ).text();
    if (/^commonLabels:/m.test(text))
      problems.push(`kustomize/${file}: uses deprecated commonLabels (use labels:)`);
  }
  return { problems, counts };
}

if (import.meta.main) {
  const { problems, counts } = await validateAll();
  for (const [t, n] of Object.entries(counts)) console.log(`${t}: ${n} objects`);
  if (problems.length > 0) {
    for (const p of problems) console.error(`problem: ${p}`);
    process.exit(1);
  }
  console.log("all manifests valid");
}
