/**
 * Installs the cluster add-ons an environment needs, at pinned chart versions, with every value
 * taken from the environment's stack.env: each add-on that calls AWS runs under the IRSA role
 * the stack made for exactly its ServiceAccount. Prints the commands; `--apply` runs them.
 *
 *   bun scripts/bootstrap-cluster.ts dev            print the helm commands
 *   bun scripts/bootstrap-cluster.ts dev --apply    run them against the current kube context
 *
 * Chart versions and ServiceAccount names are read from each chart's own sources (values.yaml
 * and templates); bump them together, deliberately.
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { ENVIRONMENTS, type Environment, parseStackEnv, stackEnvPath } from "./env-sync.ts";

/** One `helm upgrade --install`. */
export interface Install {
  release: string;
  chart: string;
  /** `--repo` for classic repositories; OCI charts carry it in `chart`. */
  repo?: string;
  version: string;
  namespace: string;
  /** The ServiceAccount the chart creates for the part that calls AWS, and its role. */
  identity?: { serviceAccount: string; roleArn: string };
  set: Record<string, string>;
}

const IRSA = "eks\\.amazonaws\\.com/role-arn";

/** The ServiceAccount `<namespace>/<name>` the stack trusts for an add-on, from stack.env. */
function trusted(stack: Record<string, string>, key: string): [string, string] {
  const value = stack[key];
  const [ns, sa, ...rest] = (value ?? "").split("/");
  if (!ns || !sa || rest.length > 0) throw new Error(`stack.env: ${key} must be namespace/name`);
  return [ns, sa];
}

function need(stack: Record<string, string>, key: string): string {
  const v = stack[key];
  if (!v) throw new Error(`stack.env has no ${key}`);
  return v;
}

/**
 * The installs of one environment. The chart decides its ServiceAccount's name; the stack's
 * role trusts one name: they must be the same, or the add-on could not assume its role.
 * @throws Error when stack.env lacks a value or names another ServiceAccount than the chart
 */
export function installs(stack: Record<string, string>): Install[] {
  const addon = (
    key: string,
    roleKey: string,
    chartServiceAccount: string,
  ): { namespace: string; identity: Install["identity"] & object } => {
    const [namespace, serviceAccount] = trusted(stack, key);
    if (serviceAccount !== chartServiceAccount)
      throw new Error(
        `${key}: the stack trusts ${namespace}/${serviceAccount}, the chart creates ${chartServiceAccount}`,
      );
    return { namespace, identity: { serviceAccount, roleArn: need(stack, roleKey) } };
  };
  // Karpenter names its ServiceAccount after the release when the release name contains
  // "karpenter"; KEDA's operator account is fixed (serviceAccount.operator.name); External
  // Secrets' is the release's full name when it contains "external-secrets".
  const karpenter = addon("karpenterServiceAccount", "karpenterRoleArn", "karpenter");
  const keda = addon("kedaServiceAccount", "kedaRoleArn", "keda-operator");
  const eso = addon("externalSecretsServiceAccount", "externalSecretsRoleArn", "external-secrets");
  return [
    {
      release: "karpenter",
      chart: "oci://public.ecr.aws/karpenter/karpenter",
      version: "1.14.1",
      ...karpenter,
      set: {
        "settings.clusterName": need(stack, "clusterName"),
        "settings.interruptionQueue": need(stack, "karpenterInterruptionQueue"),
        "serviceAccount.name": karpenter.identity.serviceAccount,
        [`serviceAccount.annotations.${IRSA}`]: karpenter.identity.roleArn,
      },
    },
    {
      release: "keda",
      chart: "keda",
      repo: "https://kedacore.github.io/charts",
      version: "2.20.2",
      ...keda,
      set: {
        // Adds the role-arn annotation (and the STS audience) to keda-operator.
        "podIdentity.aws.irsa.enabled": "true",
        "podIdentity.aws.irsa.roleArn": keda.identity.roleArn,
      },
    },
    {
      release: "external-secrets",
      chart: "external-secrets",
      repo: "https://charts.external-secrets.io",
      version: "2.9.0",
      ...eso,
      set: {
        "serviceAccount.name": eso.identity.serviceAccount,
        [`serviceAccount.annotations.${IRSA}`]: eso.identity.roleArn,
      },
    },
    {
      // Rolls the processor when its Secret changes (a rotated database password).
      release: "reloader",
      chart: "reloader",
      repo: "https://stakater.github.io/stakater-charts",
      version: "2.2.16",
      namespace: "reloader",
      set: {},
    },
    {
      // The ServiceMonitor selects on `release: kube-prometheus-stack`, and the processor's
      // NetworkPolicy admits scrapes from the `monitoring` namespace.
      release: "kube-prometheus-stack",
      chart: "kube-prometheus-stack",
      repo: "https://prometheus-community.github.io/helm-charts",
      version: "88.5.3",
      namespace: "monitoring",
      set: {},
    },
    {
      release: "argocd",
      chart: "argo-cd",
      repo: "https://argoproj.github.io/argo-helm",
      version: "10.1.1",
      namespace: "argocd",
      set: {},
    },
  ];
}

/** The helm command line of one install. */
export function helmCommand(i: Install): string[] {
  return [
    "helm",
    "upgrade",
    "--install",
    i.release,
    i.chart,
    ...(i.repo ? ["--repo", i.repo] : []),
    "--version",
    i.version,
    "--namespace",
    i.namespace,
    "--create-namespace",
    "--wait",
    ...Object.entries(i.set).flatMap(([k, v]) => ["--set", `${k}=${v}`]),
  ];
}

const quote = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`);

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { apply: { type: "boolean", default: false } },
  });
  const env = positionals[0] as Environment | undefined;
  if (!env || !ENVIRONMENTS.includes(env) || positionals.length > 1) {
    console.error(`usage: bun scripts/bootstrap-cluster.ts <${ENVIRONMENTS.join("|")}> [--apply]`);
    process.exit(2);
  }
  let commands: string[][];
  try {
    const stack = parseStackEnv(readFileSync(stackEnvPath(env), "utf8"));
    if (stack.account === "123456789012")
      throw new Error(
        `${stackEnvPath(env)} still holds the offline placeholder account: run pulumi up and bun scripts/env-sync.ts ${env} first`,
      );
    commands = installs(stack).map(helmCommand);
  } catch (err) {
    console.error((err as Error).message);
    process.exit(1);
  }
  for (const cmd of commands) {
    console.log(cmd.map(quote).join(" "));
    if (!values.apply) continue;
    const proc = Bun.spawn(cmd, { stdout: "inherit", stderr: "inherit" });
    if ((await proc.exited) !== 0) {
      console.error(`failed: ${cmd.slice(0, 4).join(" ")}`);
      process.exit(1);
    }
  }
  if (!values.apply) console.error(`# then: kubectl apply -k kustomize/argocd/${env}`);
}
