/**
 * Everything Fanda runs on EKS, written as typed objects and rendered to YAML by
 * `bun scripts/render-manifests.ts`:
 *
 *   kustomize/base/            the processor's namespace: Deployment, Service, ServiceAccounts
 *                              (IRSA), ExternalSecret, PodDisruptionBudget, NetworkPolicies,
 *                              ServiceMonitor, KEDA ScaledObject + TriggerAuthentication, the
 *                              topic-creation PreSync Job and the replay Job template
 *   kustomize/platform/base/   cluster-scoped: Karpenter NodePool + EC2NodeClass, the
 *                              External Secrets ClusterSecretStore
 *   kustomize/argocd/base/     the AppProject and the two Applications one cluster runs
 *
 * Values that differ per environment are placeholders here ({@link PLACEHOLDER}): each
 * environment's kustomization replaces them from its stack.env (written from the Pulumi stack
 * by scripts/env-sync.ts) through the replacements in kustomize/components/stack. A rendered
 * environment that still contains a placeholder is refused by the checks.
 *
 * Core kinds are typed with @kubernetes/client-node's models; custom resources with the
 * kubernetes-models packages, which also validate them against their CRD schemas
 * (scripts/validate-manifests.ts).
 */
import type {
  V1Container,
  V1CronJob,
  V1Deployment,
  V1Job,
  V1NetworkPolicy,
  V1PodDisruptionBudget,
  V1PodSpec,
  V1SecurityContext,
  V1Service,
  V1ServiceAccount,
} from "@kubernetes/client-node";
import type { IApplication } from "@kubernetes-models/argo-cd/argoproj.io/v1alpha1/Application";
import type { IAppProject } from "@kubernetes-models/argo-cd/argoproj.io/v1alpha1/AppProject";
import type { IEC2NodeClass } from "@kubernetes-models/karpenter/karpenter.k8s.aws/v1/EC2NodeClass";
import type { INodePool } from "@kubernetes-models/karpenter/karpenter.sh/v1/NodePool";
import type { IScaledObject } from "@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject";
import type { ITriggerAuthentication } from "@kubernetes-models/keda/keda.sh/v1alpha1/TriggerAuthentication";
import type { IServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor";

/** Names every manifest and overlay shares. */
export const APP = {
  name: "fanda-processor",
  /** The base's namespace; every environment replaces it with its stack's `namespace`. */
  namespace: "fanda",
  /** kustomize `images:` sets the tag; the repository comes from the stack's `ecrRepository`. */
  image: "fanda-processor",
  port: 8080,
  /** The processor's SHUTDOWN_TIMEOUT_MS; the pod's grace period must exceed it. */
  shutdownTimeoutMs: 25_000,
  /** The Secret External Secrets writes and the processor reads. */
  secret: "fanda-processor-secrets",
  replay: "fanda-replay",
  topics: "fanda-topics",
  /** Stakater Reloader restarts the pods when this Secret changes (rotated RDS password). */
  reloadAnnotation: "secret.reloader.stakater.com/reload",
} as const;

/** Marks a value an environment must replace from its stack.env. */
export const PLACEHOLDER = "set-from-stack-env";

const labels = { "app.kubernetes.io/name": APP.name, "app.kubernetes.io/part-of": "fanda" };
const selector = { "app.kubernetes.io/name": APP.name };
const partOf = { "app.kubernetes.io/part-of": "fanda" };
const labelsOf = (name: string) => ({ "app.kubernetes.io/name": name, ...partOf });

/** A manifest file and the objects in it. */
export interface ManifestFile {
  path: string;
  objects: object[];
  /** Why the file exists, written as a comment at its top. */
  comment: string;
}

const irsaServiceAccount = (
  name: string,
  why: string,
  hook: Record<string, string> = {},
): V1ServiceAccount => ({
  apiVersion: "v1",
  kind: "ServiceAccount",
  metadata: {
    name,
    labels: labelsOf(name),
    annotations: {
      // IRSA: the role the stack made for exactly this ServiceAccount (infra/index.ts).
      "eks.amazonaws.com/role-arn": PLACEHOLDER,
      "fanda.dev/may": why,
      ...hook,
    },
  },
  // IRSA's token is projected by the EKS pod identity webhook; the Kubernetes API token is
  // never needed.
  automountServiceAccountToken: false,
});

/**
 * The processor's non-secret settings, as a hash-suffixed generated ConfigMap (a change rolls
 * the pods). Values marked {@link PLACEHOLDER} come from the stack; overlays add their own.
 */
export const PROCESSOR_CONFIG: Record<string, string> = {
  KAFKA_AUTH: "iam",
  KAFKA_TOPIC: PLACEHOLDER,
  KAFKA_GROUP_ID: PLACEHOLDER,
  KAFKA_BROKERS: PLACEHOLDER,
  AWS_REGION: PLACEHOLDER,
  ENABLED_CHANNELS: "slack,email",
  LOG_LEVEL: "info",
  PORT: String(APP.port),
  SHUTDOWN_TIMEOUT_MS: String(APP.shutdownTimeoutMs),
  PROCESSOR_CONCURRENCY: "32",
  PARTITIONS_CONCURRENCY: "3",
  SLACK_DEFAULT_CHANNEL: PLACEHOLDER,
  SES_FROM: PLACEHOLDER,
  EMAIL_TO: PLACEHOLDER,
};

/** Secrets come from AWS Secrets Manager through the External Secrets Operator. */
export interface ExternalSecret {
  apiVersion: "external-secrets.io/v1";
  kind: "ExternalSecret";
  metadata: { name: string; labels?: Record<string, string> };
  spec: {
    refreshInterval: string;
    secretStoreRef: { kind: "ClusterSecretStore" | "SecretStore"; name: string };
    target: {
      name: string;
      creationPolicy: "Owner";
      template?: { engineVersion: "v2"; data: Record<string, string> };
    };
    data: { secretKey: string; remoteRef: { key: string; property?: string } }[];
  };
}

/** The ClusterSecretStore every environment's ExternalSecret reads through. */
export const SECRET_STORE = "fanda-aws-secrets-manager";

/**
 * What the ExternalSecret fetches (by template variable) and from which stack.env key the
 * secret's name comes. The properties are created by the stack (infra/components/data.ts,
 * shared.ts); test/agreement checks each one.
 */
export const SECRET_REFS = [
  { secretKey: "slackBotToken", nameFrom: "slackSecret", property: "botToken" },
  { secretKey: "mysqlUsername", nameFrom: "databaseSecret", property: "username" },
  { secretKey: "mysqlPassword", nameFrom: "databaseSecret", property: "password" },
  { secretKey: "mysqlHost", nameFrom: "endpointsSecret", property: "mysqlHost" },
  { secretKey: "mysqlPort", nameFrom: "endpointsSecret", property: "mysqlPort" },
  { secretKey: "mysqlDatabase", nameFrom: "endpointsSecret", property: "mysqlDatabase" },
  { secretKey: "redisAuthToken", nameFrom: "redisAuthSecret" },
  { secretKey: "redisHost", nameFrom: "endpointsSecret", property: "redisHost" },
  { secretKey: "redisPort", nameFrom: "endpointsSecret", property: "redisPort" },
] as const;

const externalSecret: ExternalSecret = {
  apiVersion: "external-secrets.io/v1",
  kind: "ExternalSecret",
  metadata: { name: APP.name, labels },
  spec: {
    // RDS rotates its password in place: new connections fail until the Secret follows.
    refreshInterval: "5m",
    secretStoreRef: { kind: "ClusterSecretStore", name: SECRET_STORE },
    target: {
      name: APP.secret,
      creationPolicy: "Owner",
      // RDS rotates its managed password: the URL is rebuilt from the current value at every
      // refresh, and Reloader rolls the pods when it changes.
      template: {
        engineVersion: "v2",
        data: {
          SLACK_BOT_TOKEN: "{{ .slackBotToken }}",
          MYSQL_URL:
            "mysql://{{ .mysqlUsername | urlquery }}:{{ .mysqlPassword | urlquery }}@{{ .mysqlHost }}:{{ .mysqlPort }}/{{ .mysqlDatabase }}",
          REDIS_URL: "rediss://:{{ .redisAuthToken | urlquery }}@{{ .redisHost }}:{{ .redisPort }}",
        },
      },
    },
    data: SECRET_REFS.map((r) => ({
      secretKey: r.secretKey,
      remoteRef: {
        key: PLACEHOLDER,
        ...("property" in r ? { property: r.property } : {}),
      },
    })),
  },
};

const hardened: V1SecurityContext = {
  runAsNonRoot: true,
  runAsUser: 65532,
  runAsGroup: 65532,
  readOnlyRootFilesystem: true,
  allowPrivilegeEscalation: false,
  capabilities: { drop: ["ALL"] },
  seccompProfile: { type: "RuntimeDefault" },
};

const podSecurity = {
  runAsNonRoot: true,
  runAsUser: 65532,
  runAsGroup: 65532,
  fsGroup: 65532,
  seccompProfile: { type: "RuntimeDefault" },
};

/** The image reference in the base; the environment replaces repository and tag. */
const IMAGE = `${APP.image}:${PLACEHOLDER}`;

const container: V1Container = {
  name: "processor",
  image: IMAGE,
  imagePullPolicy: "IfNotPresent",
  ports: [{ name: "http", containerPort: APP.port, protocol: "TCP" }],
  envFrom: [{ configMapRef: { name: APP.name } }, { secretRef: { name: APP.secret } }],
  env: [
    {
      // The image tag deploy set, copied into this label by the environment's replacements.
      name: "FANDA_VERSION",
      valueFrom: { fieldRef: { fieldPath: "metadata.labels['app.kubernetes.io/version']" } },
    },
    // SQLite is not used in production (MYSQL_URL is set); a writable path anyway.
    { name: "AUDIT_SQLITE_PATH", value: "/tmp/fanda-deliveries.sqlite" },
    // JavaScriptCore paces its GC against this many bytes of RAM. Bun reads the cgroup limit
    // itself, but not in every cgroup layout; without it the heap grows against the node's RAM
    // (drain peak 232 MB instead of 173 MB in docs/benchmarks.md) and meets the limit as an OOM kill.
    {
      name: "BUN_JSC_forceRAMSize",
      valueFrom: { resourceFieldRef: { containerName: "processor", resource: "limits.memory" } },
    },
  ],
  resources: {
    requests: { cpu: "250m", memory: "192Mi" },
    limits: { cpu: "1", memory: "384Mi" },
  },
  startupProbe: {
    httpGet: { path: "/healthz", port: "http" },
    periodSeconds: 2,
    failureThreshold: 30,
  },
  livenessProbe: {
    httpGet: { path: "/healthz", port: "http" },
    periodSeconds: 10,
    timeoutSeconds: 3,
    failureThreshold: 3,
  },
  readinessProbe: {
    httpGet: { path: "/readyz", port: "http" },
    periodSeconds: 5,
    timeoutSeconds: 3,
    failureThreshold: 2,
  },
  securityContext: hardened,
  volumeMounts: [{ name: "tmp", mountPath: "/tmp" }],
};

const deployment: V1Deployment = {
  apiVersion: "apps/v1",
  kind: "Deployment",
  metadata: {
    name: APP.name,
    labels: { ...labels, "app.kubernetes.io/version": PLACEHOLDER },
    annotations: { [APP.reloadAnnotation]: APP.secret },
  },
  spec: {
    // No `replicas`: KEDA's HPA owns the count, so neither Argo CD nor a re-apply resets it.
    revisionHistoryLimit: 5,
    selector: { matchLabels: selector },
    strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
    template: {
      metadata: {
        labels: { ...labels, "app.kubernetes.io/version": PLACEHOLDER },
        annotations: { "kubectl.kubernetes.io/default-container": "processor" },
      },
      spec: {
        serviceAccountName: APP.name,
        automountServiceAccountToken: false,
        // Above the processor's drain time, so SIGTERM ends in a clean exit, not SIGKILL.
        terminationGracePeriodSeconds: Math.ceil(APP.shutdownTimeoutMs / 1000) + 15,
        securityContext: podSecurity,
        topologySpreadConstraints: [
          {
            maxSkew: 1,
            topologyKey: "topology.kubernetes.io/zone",
            whenUnsatisfiable: "ScheduleAnyway",
            labelSelector: { matchLabels: selector },
          },
          {
            maxSkew: 1,
            topologyKey: "kubernetes.io/hostname",
            whenUnsatisfiable: "ScheduleAnyway",
            labelSelector: { matchLabels: selector },
          },
        ],
        containers: [container],
        volumes: [{ name: "tmp", emptyDir: { medium: "Memory", sizeLimit: "64Mi" } }],
      },
    },
  },
};

/** A short-lived pod spec for a Job: same image and hardening as the processor. */
const jobPod = (
  serviceAccount: string,
  c: Pick<V1Container, "name" | "args" | "env" | "envFrom">,
): V1PodSpec => ({
  serviceAccountName: serviceAccount,
  automountServiceAccountToken: false,
  restartPolicy: "Never",
  securityContext: podSecurity,
  containers: [
    {
      ...c,
      image: IMAGE,
      imagePullPolicy: "IfNotPresent",
      resources: {
        requests: { cpu: "100m", memory: "128Mi" },
        limits: { cpu: "500m", memory: "256Mi" },
      },
      securityContext: hardened,
    },
  ],
});

/**
 * Creates the topic and its DLQ before every sync (Argo CD PreSync hook), under a role that may
 * create exactly those two topics. Its settings are inline: a hook runs before the ConfigMap of
 * the same sync exists.
 */
const topicsJob: V1Job = {
  apiVersion: "batch/v1",
  kind: "Job",
  metadata: {
    name: APP.topics,
    labels: labelsOf(APP.topics),
    annotations: {
      "argocd.argoproj.io/hook": "PreSync",
      "argocd.argoproj.io/hook-delete-policy": "BeforeHookCreation,HookSucceeded",
    },
  },
  spec: {
    backoffLimit: 3,
    activeDeadlineSeconds: 600,
    ttlSecondsAfterFinished: 3600,
    template: {
      metadata: { labels: labelsOf(APP.topics) },
      spec: jobPod(APP.topics, {
        name: "topics",
        // Existing topics are left alone (scripts/topics.ts is idempotent).
        args: ["scripts/topics.ts", "--wait", "120", "--partitions", PLACEHOLDER],
        env: [
          { name: "KAFKA_AUTH", value: "iam" },
          { name: "KAFKA_BROKERS", value: PLACEHOLDER },
          { name: "KAFKA_TOPIC", value: PLACEHOLDER },
          { name: "AWS_REGION", value: PLACEHOLDER },
        ],
      }),
    },
  },
};

/**
 * The replay Job's template: a CronJob that never runs on its own (suspended). Each replay is a
 * Job made from it with the operator's options appended (scripts/replay-job.ts), under the
 * replay role: read the DLQ, write the main topic, nothing else.
 */
const replayTemplate: V1CronJob = {
  apiVersion: "batch/v1",
  kind: "CronJob",
  metadata: { name: APP.replay, labels: labelsOf(APP.replay) },
  spec: {
    suspend: true,
    schedule: "0 0 1 1 *",
    concurrencyPolicy: "Forbid",
    jobTemplate: {
      metadata: { labels: labelsOf(APP.replay) },
      spec: {
        backoffLimit: 0,
        activeDeadlineSeconds: 3600,
        ttlSecondsAfterFinished: 86400,
        template: {
          metadata: { labels: labelsOf(APP.replay) },
          spec: jobPod(APP.replay, {
            name: "replay",
            args: ["scripts/replay.ts"],
            envFrom: [{ configMapRef: { name: APP.name } }, { secretRef: { name: APP.secret } }],
          }),
        },
      },
    },
  },
};

const service: V1Service = {
  apiVersion: "v1",
  kind: "Service",
  metadata: { name: APP.name, labels },
  spec: {
    type: "ClusterIP",
    selector,
    ports: [{ name: "http", port: APP.port, targetPort: "http", protocol: "TCP" }],
  },
};

const pdb: V1PodDisruptionBudget = {
  apiVersion: "policy/v1",
  kind: "PodDisruptionBudget",
  metadata: { name: APP.name, labels },
  // Node drains and consolidation take one consumer at a time, never all of them.
  spec: { maxUnavailable: 1, selector: { matchLabels: selector } },
};

/** The data ports every Fanda pod may reach inside the VPC: MSK IAM, Redis, MySQL. */
export const DATA_PORTS = [9098, 6379, 3306] as const;

const defaultPolicy: V1NetworkPolicy = {
  apiVersion: "networking.k8s.io/v1",
  kind: "NetworkPolicy",
  metadata: { name: "fanda-default", labels: partOf },
  spec: {
    // Every Fanda pod: the processor and the topic and replay Jobs.
    podSelector: { matchLabels: partOf },
    policyTypes: ["Ingress", "Egress"],
    // No ingress unless another policy allows it.
    ingress: [],
    egress: [
      {
        to: [
          { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "kube-system" } } },
        ],
        ports: [
          { protocol: "UDP", port: 53 },
          { protocol: "TCP", port: 53 },
        ],
      },
      {
        // MSK (IAM, TLS), ElastiCache, RDS: the VPC's CIDR, from the stack.
        to: [{ ipBlock: { cidr: PLACEHOLDER } }],
        ports: DATA_PORTS.map((port) => ({ protocol: "TCP", port })),
      },
      {
        // Slack, SES, STS (IRSA): HTTPS only.
        to: [{ ipBlock: { cidr: "0.0.0.0/0" } }],
        ports: [{ protocol: "TCP", port: 443 }],
      },
    ],
  },
};

const metricsPolicy: V1NetworkPolicy = {
  apiVersion: "networking.k8s.io/v1",
  kind: "NetworkPolicy",
  metadata: { name: `${APP.name}-metrics`, labels },
  spec: {
    podSelector: { matchLabels: selector },
    policyTypes: ["Ingress"],
    ingress: [
      {
        // Prometheus scrapes /metrics; probes come from the kubelet (not subject to this).
        _from: [
          { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "monitoring" } } },
        ],
        ports: [{ protocol: "TCP", port: APP.port }],
      },
    ],
  },
};

const serviceMonitor: IServiceMonitor = {
  apiVersion: "monitoring.coreos.com/v1",
  kind: "ServiceMonitor",
  metadata: { name: APP.name, labels: { ...labels, release: "kube-prometheus-stack" } },
  spec: {
    selector: { matchLabels: selector },
    endpoints: [{ port: "http", path: "/metrics", interval: "30s", scrapeTimeout: "10s" }],
  },
};

const triggerAuthentication: ITriggerAuthentication = {
  apiVersion: "keda.sh/v1alpha1",
  kind: "TriggerAuthentication",
  metadata: { name: `${APP.name}-msk`, labels },
  // The KEDA operator's own IRSA role (infra: fanda-keda, Describe on the topic and group)
  // signs the MSK IAM token.
  spec: { podIdentity: { provider: "aws" } },
};

const scaledObject: IScaledObject = {
  apiVersion: "keda.sh/v1alpha1",
  kind: "ScaledObject",
  metadata: { name: APP.name, labels, annotations: { "argocd.argoproj.io/sync-wave": "1" } },
  spec: {
    scaleTargetRef: { name: APP.name },
    minReplicaCount: 2,
    // Overlays keep this at or below the topic's partitions (checked against stack.env).
    maxReplicaCount: 6,
    pollingInterval: 15,
    cooldownPeriod: 300,
    triggers: [
      {
        // The Sarama-based scaler: MSK IAM is OAUTHBEARER with the aws_msk_iam token provider.
        // (The `apache-kafka` scaler spells it `sasl: aws_msk_iam` instead.)
        type: "kafka",
        metadata: {
          bootstrapServers: PLACEHOLDER,
          consumerGroup: PLACEHOLDER,
          topic: PLACEHOLDER,
          // Lag one pod clears in 15 s (the polling interval) at the ~4,000 events/s one vCPU
          // delivers (docs/deployment.md, sizing): a lower value scales out for bursts one pod
          // finishes first, or that SES and Slack bound whatever the pod count.
          lagThreshold: "60000",
          activationLagThreshold: "10",
          offsetResetPolicy: "earliest",
          sasl: "oauthbearer",
          saslTokenProvider: "aws_msk_iam",
          tls: "enable",
          awsRegion: PLACEHOLDER,
        },
        authenticationRef: { name: `${APP.name}-msk` },
      },
    ],
  },
};

const nodePool: INodePool = {
  apiVersion: "karpenter.sh/v1",
  kind: "NodePool",
  metadata: { name: "fanda-workloads" },
  spec: {
    template: {
      metadata: { labels: { "fanda.dev/pool": "workloads" } },
      spec: {
        nodeClassRef: { group: "karpenter.k8s.aws", kind: "EC2NodeClass", name: "fanda" },
        requirements: [
          // Both allowed: Karpenter picks spot when it can and falls back to on-demand.
          { key: "karpenter.sh/capacity-type", operator: "In", values: ["spot", "on-demand"] },
          { key: "kubernetes.io/arch", operator: "In", values: ["amd64"] },
          { key: "karpenter.k8s.aws/instance-category", operator: "In", values: ["c", "m", "r"] },
          { key: "karpenter.k8s.aws/instance-generation", operator: "Gt", values: ["5"] },
        ],
        expireAfter: "720h",
      },
    },
    disruption: {
      consolidationPolicy: "WhenEmptyOrUnderutilized",
      consolidateAfter: "5m",
      // At most one node in ten at a time; with the PodDisruptionBudget, consumers move gradually.
      budgets: [{ nodes: "10%" }],
    },
    limits: { cpu: "64", memory: "256Gi" },
  },
};

const nodeClass: IEC2NodeClass = {
  apiVersion: "karpenter.k8s.aws/v1",
  kind: "EC2NodeClass",
  metadata: { name: "fanda" },
  spec: {
    // Pinned: bump deliberately (karpenter.sh docs list the AL2023 alias versions).
    amiSelectorTerms: [{ alias: "al2023@v20251117" }],
    role: PLACEHOLDER,
    subnetSelectorTerms: [{ tags: { "karpenter.sh/discovery": PLACEHOLDER } }],
    securityGroupSelectorTerms: [{ tags: { "karpenter.sh/discovery": PLACEHOLDER } }],
    metadataOptions: { httpTokens: "required", httpPutResponseHopLimit: 1 },
  },
};

/** External Secrets' cluster-wide store, usable only from the environment's namespace. */
export interface ClusterSecretStore {
  apiVersion: "external-secrets.io/v1";
  kind: "ClusterSecretStore";
  metadata: { name: string; labels?: Record<string, string> };
  spec: {
    provider: { aws: { service: "SecretsManager"; region: string } };
    conditions: { namespaces: string[] }[];
  };
}

const secretStore: ClusterSecretStore = {
  apiVersion: "external-secrets.io/v1",
  kind: "ClusterSecretStore",
  metadata: { name: SECRET_STORE, labels: partOf },
  spec: {
    // No `auth`: the External Secrets controller's own IRSA role (infra: fanda-external-secrets)
    // may read exactly Fanda's secrets.
    provider: { aws: { service: "SecretsManager", region: PLACEHOLDER } },
    conditions: [{ namespaces: [PLACEHOLDER] }],
  },
};

/** The Argo CD project both Applications of a cluster belong to: one repository, one namespace. */
export const PROJECT = "fanda";
const IN_CLUSTER = "https://kubernetes.default.svc";

const appProject: IAppProject = {
  apiVersion: "argoproj.io/v1alpha1",
  kind: "AppProject",
  metadata: { name: PROJECT, namespace: "argocd", labels: partOf },
  spec: {
    description: "Fanda: the processor and its cluster-scoped platform objects",
    sourceRepos: [PLACEHOLDER],
    destinations: [{ server: IN_CLUSTER, namespace: PLACEHOLDER }],
    // Cluster-scoped kinds the platform Application may manage, and nothing else.
    clusterResourceWhitelist: [
      { group: "", kind: "Namespace" },
      { group: "karpenter.sh", kind: "NodePool" },
      { group: "karpenter.k8s.aws", kind: "EC2NodeClass" },
      { group: "external-secrets.io", kind: "ClusterSecretStore" },
    ],
  },
};

const application = (name: string, path: string, why: string): IApplication => ({
  apiVersion: "argoproj.io/v1alpha1",
  kind: "Application",
  metadata: {
    name,
    namespace: "argocd",
    labels: partOf,
    annotations: { "fanda.dev/what": why },
  },
  spec: {
    project: PROJECT,
    source: { repoURL: PLACEHOLDER, targetRevision: "main", path },
    // Each cluster runs its own Argo CD, which deploys only its own environment.
    destination: { server: IN_CLUSTER, namespace: PLACEHOLDER },
    syncPolicy: {
      syncOptions: [
        "CreateNamespace=true",
        "ServerSideApply=true",
        "RespectIgnoreDifferences=true",
      ],
      // A failed sync (an image not pushed yet, a hook that timed out) is tried again, not left
      // until the next commit.
      retry: { limit: 10, backoff: { duration: "30s", factor: 2, maxDuration: "10m" } },
    },
    // KEDA owns the replica count (the Deployment leaves it out); never reset it on a sync.
    ignoreDifferences: [{ group: "apps", kind: "Deployment", jsonPointers: ["/spec/replicas"] }],
  },
});

/** Every generated manifest file. */
export function manifests(): ManifestFile[] {
  return [
    {
      path: "base/serviceaccount.yaml",
      objects: [
        irsaServiceAccount(APP.name, "Reads the topic, writes the DLQ, sends email."),
        irsaServiceAccount(APP.replay, "Reads the DLQ, writes the topic."),
        // A PreSync hook itself, one wave before the Job: hooks run before the sync applies
        // anything else, so a normal ServiceAccount would not exist yet on the first sync.
        irsaServiceAccount(APP.topics, "Creates the topic and its DLQ.", {
          "argocd.argoproj.io/hook": "PreSync",
          "argocd.argoproj.io/hook-delete-policy": "BeforeHookCreation",
          "argocd.argoproj.io/sync-wave": "-1",
        }),
      ],
      comment: "Identities of the processor and its Jobs; each has its own IRSA role.",
    },
    {
      path: "base/externalsecret.yaml",
      objects: [externalSecret],
      comment:
        "Slack token, MySQL and Redis URLs, built from AWS Secrets Manager (External Secrets Operator).",
    },
    { path: "base/deployment.yaml", objects: [deployment], comment: "The processor." },
    {
      path: "base/jobs.yaml",
      objects: [topicsJob, replayTemplate],
      comment: "Topic creation before each sync, and the replay Job's template.",
    },
    {
      path: "base/service.yaml",
      objects: [service],
      comment: "Health, readiness, metrics and status on one port.",
    },
    { path: "base/pdb.yaml", objects: [pdb], comment: "Disruptions take one consumer at a time." },
    {
      path: "base/networkpolicy.yaml",
      objects: [defaultPolicy, metricsPolicy],
      comment: "Egress: DNS, MSK/Redis/MySQL in the VPC, HTTPS. Ingress: monitoring only.",
    },
    {
      path: "base/servicemonitor.yaml",
      objects: [serviceMonitor],
      comment: "Prometheus scrapes /metrics.",
    },
    {
      path: "base/keda.yaml",
      objects: [triggerAuthentication, scaledObject],
      comment: "Scale on consumer lag (MSK IAM), up to the partition count.",
    },
    {
      path: "platform/base/platform.yaml",
      objects: [nodePool, nodeClass, secretStore],
      comment: "Cluster-scoped: workload nodes (spot first) and the secret store.",
    },
    {
      path: "argocd/base/argocd.yaml",
      objects: [
        appProject,
        // The `<env>` part of each path comes from the stack's `environment`.
        application(
          "fanda",
          `kustomize/overlays/${PLACEHOLDER}`,
          "The processor, its Jobs and monitoring.",
        ),
        application(
          "fanda-platform",
          `kustomize/platform/${PLACEHOLDER}`,
          "Karpenter NodePool and the secret store.",
        ),
      ],
      comment: "Argo CD on one cluster: its project and the two Applications of its environment.",
    },
  ];
}

/** The processor's ConfigMap as a KEY=VALUE file for the base's configMapGenerator. */
export function renderEnvFile(values: Record<string, string>): string {
  return `${Object.entries(values)
    .map(([k, v]) => `${k}=${v}`)
    .join("\n")}\n`;
}

/** client-node names `from` `_from` (a reserved word); the API's name is `from`. */
function apiKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(apiKeys);
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k === "_from" ? "from" : k, apiKeys(v)]),
    );
  }
  return value;
}

/** Renders one file: a comment header, then the objects as YAML documents. */
export function renderFile(file: ManifestFile): string {
  const header = `# Generated by scripts/render-manifests.ts from kustomize/src/manifests.ts: edit those, not this.\n# ${file.comment}\n`;
  return (
    header +
    file.objects
      .map((o) => `---\n${Bun.YAML.stringify(apiKeys(o), null, 2).replace(/\n*$/, "\n")}`)
      .join("")
  );
}
