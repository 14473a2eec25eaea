/**
 * Validates every Kubernetes manifest offline: renders each kustomization with
 * `kubectl kustomize`, checks every object against its schema (kubernetes-models for core
 * kinds and the CRDs we use), and applies the project's policies. Used by the tests and CI.
 * What must agree with the Pulumi stacks is checked in test/agreement.
 *
 *   bun scripts/validate-manifests.ts      prints every problem, exits 1 if there is one
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Application } from "@kubernetes-models/argo-cd/argoproj.io/v1alpha1/Application";
import { AppProject } from "@kubernetes-models/argo-cd/argoproj.io/v1alpha1/AppProject";
import { EC2NodeClass } from "@kubernetes-models/karpenter/karpenter.k8s.aws/v1/EC2NodeClass";
import { NodePool } from "@kubernetes-models/karpenter/karpenter.sh/v1/NodePool";
import { ScaledObject } from "@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject";
import { TriggerAuthentication } from "@kubernetes-models/keda/keda.sh/v1alpha1/TriggerAuthentication";
import { PrometheusRule } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule";
import { ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor";
import { Deployment } from "kubernetes-models/apps/v1/Deployment";
import { CronJob } from "kubernetes-models/batch/v1/CronJob";
import { Job } from "kubernetes-models/batch/v1/Job";
import { NetworkPolicy } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicy";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { Service } from "kubernetes-models/v1/Service";
import { ServiceAccount } from "kubernetes-models/v1/ServiceAccount";
import { APP, PLACEHOLDER } from "../kustomize/src/manifests.ts";
import { ENVIRONMENTS, parseStackEnv, stackEnvPath } from "./env-sync.ts";
import { runCommand } from "./run.ts";
import { RELEASE_TAG } from "./set-image.ts";

const KUSTOMIZE = join(import.meta.dir, "..", "kustomize");

/** Kustomizations of one environment: they must render with every stack value filled in. */
export const ENVIRONMENT_TARGETS = ENVIRONMENTS.flatMap((env) => [
  `overlays/${env}`,
  `platform/${env}`,
  `argocd/${env}`,
]);

/** Every kustomization that must render. */
export const TARGETS = ["base", "base/monitoring", ...ENVIRONMENT_TARGETS];

/** A rendered Kubernetes object, loosely typed. */
export type K8sObject = {
  apiVersion: string;
  kind: string;
  metadata?: {
    name?: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
};

const SCHEMAS: Record<string, new (o: never) => { validate(): void }> = {
  "v1/ConfigMap": ConfigMap,
  "v1/Service": Service,
  "v1/ServiceAccount": ServiceAccount,
  "apps/v1/Deployment": Deployment,
  "batch/v1/Job": Job,
  "batch/v1/CronJob": CronJob,
  "policy/v1/PodDisruptionBudget": PodDisruptionBudget,
  "networking.k8s.io/v1/NetworkPolicy": NetworkPolicy,
  "monitoring.coreos.com/v1/ServiceMonitor": ServiceMonitor,
  "monitoring.coreos.com/v1/PrometheusRule": PrometheusRule,
  "keda.sh/v1alpha1/ScaledObject": ScaledObject,
  "keda.sh/v1alpha1/TriggerAuthentication": TriggerAuthentication,
  "karpenter.sh/v1/NodePool": NodePool,
  "karpenter.k8s.aws/v1/EC2NodeClass": EC2NodeClass,
  "argoproj.io/v1alpha1/Application": Application,
  "argoproj.io/v1alpha1/AppProject": AppProject,
};

/** Kinds with no published schema here; checked by the policies below instead. */
const NO_SCHEMA = new Set([
  "external-secrets.io/v1/ExternalSecret",
  "external-secrets.io/v1/ClusterSecretStore",
]);

/** Renders a kustomization directory; kubectl's warnings count as problems. */
export async function renderDir(
  dir: string,
  label = dir,
): Promise<{ objects: K8sObject[]; problems: string[] }> {
  const kubectl = Bun.which("kubectl");
  if (!kubectl)
    return { objects: [], problems: ["kubectl is not installed (it renders the kustomizations)"] };
  const { stdout: out, stderr: err, code } = await runCommand([kubectl, "kustomize", dir]);
  const problems: string[] = [];
  if (code !== 0) problems.push(`${label}: kubectl kustomize failed: ${err.trim()}`);
  else if (err.trim()) problems.push(`${label}: kubectl kustomize warned: ${err.trim()}`);
  const parsed = code === 0 ? Bun.YAML.parse(out) : [];
  const objects = (Array.isArray(parsed) ? parsed : [parsed]).filter(Boolean) as K8sObject[];
  return { objects, problems };
}

/** Renders one kustomization of this repository (a path under kustomize/). */
export function render(target: string): Promise<{ objects: K8sObject[]; problems: string[] }> {
  return renderDir(join(KUSTOMIZE, target), target);
}

/** The stack values an environment target renders with (its committed stack.env). */
export function stackOf(target: string): Record<string, string> | undefined {
  const env = ENVIRONMENTS.find((e) => target.endsWith(`/${e}`));
  return env ? parseStackEnv(readFileSync(stackEnvPath(env), "utf8")) : undefined;
}

type Pod = Record<string, unknown> & { containers?: Record<string, unknown>[] };

/** The pod spec of a workload object, if it has one. */
export function podOf(o: K8sObject): Pod | undefined {
  type Template = { template?: { spec?: Pod } };
  const spec = o.spec as (Template & { jobTemplate?: { spec?: Template } }) | undefined;
  if (o.kind === "Deployment" || o.kind === "Job") return spec?.template?.spec;
  if (o.kind === "CronJob") return spec?.jobTemplate?.spec?.template?.spec;
  return undefined;
}

function containerProblems(name: string, c: Record<string, unknown>, pod: Pod): string[] {
  const problems: string[] = [];
  const podSecurity = (pod.securityContext ?? {}) as Record<string, unknown>;
  const sc = (c.securityContext ?? {}) as Record<string, unknown>;
  if (sc.runAsNonRoot !== true && podSecurity.runAsNonRoot !== true)
    problems.push(`${name}: not runAsNonRoot`);
  if (sc.readOnlyRootFilesystem !== true) problems.push(`${name}: root filesystem is writable`);
  if (sc.allowPrivilegeEscalation !== false) problems.push(`${name}: allows privilege escalation`);
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
  const image = String(c.image ?? "");
  const tag = image.includes("@") ? "digest" : image.slice(image.lastIndexOf(":") + 1);
  if (!image.includes(":") || tag === "latest" || image.endsWith(":")) {
    problems.push(`${name}: image ${image} has no pinned tag`);
  }
  return problems;
}

/**
 * Schema and policy problems of rendered objects (empty when all is well). `stack` is the
 * environment's stack.env when the target belongs to an environment.
 */
export function check(target: string, objects: K8sObject[], stack?: Record<string, string>) {
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
    if (stack && JSON.stringify(o).includes(PLACEHOLDER))
      problems.push(`${where(o)}: still has a ${PLACEHOLDER} value (a stack.env key is missing)`);
  }
  const configMaps = objects.filter((o) => o.kind === "ConfigMap");
  for (const o of objects) {
    const pod = podOf(o);
    if (!pod) continue;
    if (pod.automountServiceAccountToken !== false)
      problems.push(`${where(o)}: mounts a Kubernetes API token it does not use`);
    for (const c of pod.containers ?? []) {
      const name = `${where(o)} container ${String(c.name)}`;
      problems.push(...containerProblems(name, c, pod));
      if (stack && !RELEASE_TAG.test(String(c.image).split(":").pop() ?? ""))
        problems.push(`${name}: image tag is not a commit SHA (the only tags CI pushes)`);
      if (stack && !String(c.image).startsWith(`${stack.ecrRepository}:`))
        problems.push(`${name}: image is not from the stack's repository ${stack.ecrRepository}`);
    }
  }
  for (const o of objects.filter((x) => x.kind === "Deployment")) {
    const pod = podOf(o) ?? {};
    const containers = pod.containers ?? [];
    for (const c of containers) {
      const name = `${where(o)} container ${String(c.name)}`;
      if (!c.livenessProbe || !c.readinessProbe)
        problems.push(`${name}: liveness and readiness probes required`);
      const env = (c.env ?? []) as {
        name: string;
        valueFrom?: { resourceFieldRef?: { resource?: string }; fieldRef?: { fieldPath?: string } };
      }[];
      const ramSize = env.find((e) => e.name === "BUN_JSC_forceRAMSize");
      if (ramSize?.valueFrom?.resourceFieldRef?.resource !== "limits.memory")
        problems.push(`${name}: BUN_JSC_forceRAMSize must follow limits.memory (GC pacing)`);
      const version = env.find((e) => e.name === "FANDA_VERSION")?.valueFrom?.fieldRef?.fieldPath;
      const labels = (o.spec?.template as { metadata?: { labels?: Record<string, string> } })
        ?.metadata?.labels;
      const tag = String(c.image).split(":").pop();
      if (version !== "metadata.labels['app.kubernetes.io/version']")
        problems.push(`${name}: FANDA_VERSION must come from the app.kubernetes.io/version label`);
      else if (stack && labels?.["app.kubernetes.io/version"] !== tag)
        problems.push(`${name}: version label is not the image tag ${tag}`);
      // Configuration changes must roll the pods: generated (hash-suffixed) ConfigMaps, and a
      // reload annotation for the Secret.
      for (const from of (c.envFrom ?? []) as {
        configMapRef?: { name: string };
        secretRef?: { name: string };
      }[]) {
        const cm = from.configMapRef?.name;
        if (cm && !/-[a-z0-9]{10}$/.test(cm))
          problems.push(`${name}: ConfigMap ${cm} has no content hash (a change would not roll)`);
        const generated = configMaps.find((m) => m.metadata?.name === cm);
        if (cm && !generated) problems.push(`${name}: ConfigMap ${cm} is not in the build`);
        // Pods of the old ReplicaSet still read theirs until the rollout is done.
        if (
          generated &&
          !generated.metadata?.annotations?.["argocd.argoproj.io/sync-options"]?.includes(
            "PruneLast=true",
          )
        )
          problems.push(`${name}: ConfigMap ${cm} would be pruned before the rollout finishes`);
        const secret = from.secretRef?.name;
        if (secret && o.metadata?.annotations?.[APP.reloadAnnotation] !== secret)
          problems.push(`${name}: a change of Secret ${secret} would not roll the pods`);
      }
    }
    const configMap = configMaps.find((m) =>
      (containers[0]?.envFrom as { configMapRef?: { name: string } }[] | undefined)?.some(
        (f) => f.configMapRef?.name === m.metadata?.name,
      ),
    );
    const grace = Number(pod.terminationGracePeriodSeconds ?? 30);
    const drain = Number(configMap?.data?.SHUTDOWN_TIMEOUT_MS ?? APP.shutdownTimeoutMs) / 1000;
    if (!(grace > drain))
      problems.push(
        `${where(o)}: terminationGracePeriodSeconds ${grace} is not above the drain time ${drain}s`,
      );
    const scaled = objects.some(
      (s) =>
        s.kind === "ScaledObject" &&
        (s.spec?.scaleTargetRef as { name?: string } | undefined)?.name === o.metadata?.name,
    );
    if (scaled && o.spec?.replicas !== undefined)
      problems.push(
        `${where(o)}: sets replicas although KEDA owns the count (sync would reset it)`,
      );
  }
  // A PreSync hook runs before the sync applies anything else: on the first sync, what it
  // needs must be a PreSync hook of an earlier wave too, or inline.
  const HOOK = "argocd.argoproj.io/hook";
  const wave = (o: K8sObject) =>
    Number(o.metadata?.annotations?.["argocd.argoproj.io/sync-wave"] ?? 0);
  for (const o of objects.filter((x) => x.metadata?.annotations?.[HOOK] === "PreSync")) {
    const pod = podOf(o);
    if (!pod) continue;
    const sa = objects.find(
      (x) => x.kind === "ServiceAccount" && x.metadata?.name === pod.serviceAccountName,
    );
    const earlierHook =
      sa !== undefined && sa.metadata?.annotations?.[HOOK] === "PreSync" && wave(sa) < wave(o);
    if (!earlierHook)
      problems.push(
        `${where(o)}: PreSync hook runs as ${String(pod.serviceAccountName)}, which is not a PreSync hook of an earlier wave (it would not exist on the first sync)`,
      );
    for (const c of pod.containers ?? [])
      if (((c.envFrom ?? []) as unknown[]).length > 0)
        problems.push(`${where(o)}: PreSync hook reads envFrom, which the same sync creates later`);
  }
  for (const o of objects.filter((x) => x.kind === "ScaledObject")) {
    const min = Number(o.spec?.minReplicaCount ?? 0);
    const max = Number(o.spec?.maxReplicaCount ?? 100);
    const partitions = Number(stack?.partitions ?? Number.POSITIVE_INFINITY);
    if (max > partitions)
      problems.push(`${where(o)}: maxReplicaCount ${max} is above the ${partitions} partitions`);
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
  for (const o of objects.filter((x) => x.kind === "PrometheusRule")) {
    for (const group of (o.spec?.groups ?? []) as { rules: { alert?: string; expr: string }[] }[])
      for (const rule of group.rules)
        if (/namespace\s*=~?\s*"/.test(String(rule.expr)))
          problems.push(
            `${where(o)}: alert ${rule.alert} hard-codes a namespace (it would miss other environments)`,
          );
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
    problems.push(...r.problems, ...check(target, r.objects, stackOf(target)));
    const text = await Bun.file(join(KUSTOMIZE, target, "kustomization.yaml")).text();
    if (/^commonLabels:/m.test(text))
      problems.push(`kustomize/${target}: uses deprecated commonLabels (use labels:)`);
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
