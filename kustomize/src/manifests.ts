/**
 * Everything Fanda runs on EKS, written as typed objects and rendered to YAML by
 * `bun scripts/render-manifests.ts`:
 *
 *   kustomize/base/        the processor: Deployment, Service, ServiceAccount (IRSA), ConfigMap,
 *                          ExternalSecret, PodDisruptionBudget, NetworkPolicy, ServiceMonitor,
 *                          KEDA ScaledObject + TriggerAuthentication
 *   kustomize/karpenter/   NodePool (spot first, on-demand fallback) and EC2NodeClass
 *   kustomize/argocd/      one Application per environment
 *
 * Core kinds are typed with @kubernetes/client-node's models; custom resources with the
 * kubernetes-models packages, which also validate them against their CRD schemas
 * (scripts/validate-manifests.ts). Overlays (kustomize/overlays/<env>) stay thin and by hand.
 */
import type {
  V1ConfigMap,
  V1Container,
  V1Deployment,
  V1NetworkPolicy,
  V1PodDisruptionBudget,
  V1Service,
  V1ServiceAccount,
} from "@kubernetes/client-node";
import type { IApplication } from "@kubernetes-models/argo-cd/argoproj.io/v1alpha1/Application";
import type { IEC2NodeClass } from "@kubernetes-models/karpenter/karpenter.k8s.aws/v1/EC2NodeClass";
import type { INodePool } from "@kubernetes-models/karpenter/karpenter.sh/v1/NodePool";
import type { IScaledObject } from "@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject";
import type { ITriggerAuthentication } from "@kubernetes-models/keda/keda.sh/v1alpha1/TriggerAuthentication";
import type { IServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor";

/** Names every manifest and overlay shares. */
export const APP = {
  name: "fanda-processor",
  namespace: "fanda",
  /** kustomize `images:` replaces this name with the ECR repository and the commit tag. */
  image: "fanda-processor",
  port: 8080,
  topic: "fanda-notifications",
  /** Partitions of the topic: the most consumers a group can use. */
  partitions: 6,
  /** The processor's SHUTDOWN_TIMEOUT_MS; the pod's grace period must exceed it. */
  shutdownTimeoutMs: 25_000,
} as const;

const labels = { "app.kubernetes.io/name": APP.name, "app.kubernetes.io/part-of": "fanda" };
const selector = { "app.kubernetes.io/name": APP.name };

/** A manifest file and the objects in it. */
export interface ManifestFile {
  path: string;
  objects: object[];
  /** Why the file exists, written as a comment at its top. */
  comment: string;
}

const serviceAccount: V1ServiceAccount = {
  apiVersion: "v1",
  kind: "ServiceAccount",
  metadata: {
    name: APP.name,
    labels,
    annotations: {
      // IRSA: the role with kafka-cluster:Connect/DescribeGroup/AlterGroup/ReadData on the topic,
      // WriteData on the DLQ, ses:SendEmail and the Slack secret (infra/). Overlays set the ARN.
      "eks.amazonaws.com/role-arn": "arn:aws:iam::000000000000:role/fanda-processor",
    },
  },
  automountServiceAccountToken: false,
};

const configMap: V1ConfigMap = {
  apiVersion: "v1",
  kind: "ConfigMap",
  metadata: { name: APP.name, labels },
  data: {
    KAFKA_AUTH: "iam",
    KAFKA_TOPIC: APP.topic,
    KAFKA_GROUP_ID: APP.name,
    ENABLED_CHANNELS: "slack,email",
    LOG_LEVEL: "info",
    PORT: String(APP.port),
    SHUTDOWN_TIMEOUT_MS: String(APP.shutdownTimeoutMs),
    PROCESSOR_CONCURRENCY: "32",
    PARTITIONS_CONCURRENCY: "3",
    // Set per environment by the overlays.
    KAFKA_BROKERS: "b-1.msk.example.internal:9098",
    AWS_REGION: "ap-northeast-2",
    SLACK_DEFAULT_CHANNEL: "#fanda-uploads",
    SES_FROM: "fanda@example.com",
    EMAIL_TO: "ops@example.com",
  },
};

/** Secrets come from AWS Secrets Manager through the External Secrets Operator. */
export interface ExternalSecret {
  apiVersion: "external-secrets.io/v1";
  kind: "ExternalSecret";
  metadata: { name: string; labels?: Record<string, string> };
  spec: {
    refreshInterval: string;
    secretStoreRef: { kind: "ClusterSecretStore" | "SecretStore"; name: string };
    target: { name: string; creationPolicy: "Owner" };
    data: { secretKey: string; remoteRef: { key: string; property?: string } }[];
  };
}

const externalSecret: ExternalSecret = {
  apiVersion: "external-secrets.io/v1",
  kind: "ExternalSecret",
  metadata: { name: APP.name, labels },
  spec: {
    refreshInterval: "1h",
    secretStoreRef: { kind: "ClusterSecretStore", name: "aws-secrets-manager" },
    target: { name: `${APP.name}-secrets`, creationPolicy: "Owner" },
    data: [
      { secretKey: "SLACK_BOT_TOKEN", remoteRef: { key: "fanda/slack", property: "botToken" } },
      { secretKey: "MYSQL_URL", remoteRef: { key: "fanda/mysql", property: "url" } },
      { secretKey: "REDIS_URL", remoteRef: { key: "fanda/redis", property: "url" } },
    ],
  },
};

const container: V1Container = {
  name: "processor",
  image: `${APP.image}:dev`,
  imagePullPolicy: "IfNotPresent",
  ports: [{ name: "http", containerPort: APP.port, protocol: "TCP" }],
  envFrom: [{ configMapRef: { name: APP.name } }, { secretRef: { name: `${APP.name}-secrets` } }],
  env: [
    {
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
  securityContext: {
    runAsNonRoot: true,
    runAsUser: 65532,
    runAsGroup: 65532,
    readOnlyRootFilesystem: true,
    allowPrivilegeEscalation: false,
    capabilities: { drop: ["ALL"] },
    seccompProfile: { type: "RuntimeDefault" },
  },
  volumeMounts: [{ name: "tmp", mountPath: "/tmp" }],
};

const deployment: V1Deployment = {
  apiVersion: "apps/v1",
  kind: "Deployment",
  metadata: { name: APP.name, labels: { ...labels, "app.kubernetes.io/version": "dev" } },
  spec: {
    // KEDA owns the replica count (ArgoCD ignores it); this is the floor before KEDA acts.
    replicas: 2,
    revisionHistoryLimit: 5,
    selector: { matchLabels: selector },
    strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
    template: {
      metadata: {
        labels: { ...labels, "app.kubernetes.io/version": "dev" },
        annotations: { "kubectl.kubernetes.io/default-container": "processor" },
      },
      spec: {
        serviceAccountName: APP.name,
        automountServiceAccountToken: true,
        // Above the processor's drain time, so SIGTERM ends in a clean exit, not SIGKILL.
        terminationGracePeriodSeconds: Math.ceil(APP.shutdownTimeoutMs / 1000) + 15,
        securityContext: {
          runAsNonRoot: true,
          runAsUser: 65532,
          runAsGroup: 65532,
          fsGroup: 65532,
          seccompProfile: { type: "RuntimeDefault" },
        },
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

const networkPolicy: V1NetworkPolicy = {
  apiVersion: "networking.k8s.io/v1",
  kind: "NetworkPolicy",
  metadata: { name: APP.name, labels },
  spec: {
    podSelector: { matchLabels: selector },
    policyTypes: ["Ingress", "Egress"],
    ingress: [
      {
        // Prometheus scrapes /metrics; probes come from the kubelet (not subject to this).
        _from: [
          { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "monitoring" } } },
        ],
        ports: [{ protocol: "TCP", port: APP.port }],
      },
    ],
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
        // MSK (IAM, TLS), ElastiCache, RDS: inside the VPC (overlays set its CIDR).
        to: [{ ipBlock: { cidr: "10.0.0.0/16" } }],
        ports: [
          { protocol: "TCP", port: 9098 },
          { protocol: "TCP", port: 6379 },
          { protocol: "TCP", port: 3306 },
        ],
      },
      {
        // Slack, SES, STS (IRSA), Secrets Manager: HTTPS only.
        to: [{ ipBlock: { cidr: "0.0.0.0/0" } }],
        ports: [{ protocol: "TCP", port: 443 }],
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
  // KEDA's operator role (IRSA) signs the MSK IAM token.
  spec: { podIdentity: { provider: "aws" } },
};

const scaledObject: IScaledObject = {
  apiVersion: "keda.sh/v1alpha1",
  kind: "ScaledObject",
  metadata: { name: APP.name, labels, annotations: { "argocd.argoproj.io/sync-wave": "1" } },
  spec: {
    scaleTargetRef: { name: APP.name },
    minReplicaCount: 2,
    // More consumers than partitions would sit idle.
    maxReplicaCount: APP.partitions,
    pollingInterval: 15,
    cooldownPeriod: 300,
    triggers: [
      {
        type: "apache-kafka",
        metadata: {
          bootstrapServers: "b-1.msk.example.internal:9098",
          consumerGroup: APP.name,
          topic: APP.topic,
          lagThreshold: "500",
          activationLagThreshold: "10",
          sasl: "oauthbearer",
          saslTokenProvider: "aws_msk_iam",
          tls: "enable",
          awsRegion: "ap-northeast-2",
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
    role: "KarpenterNodeRole-fanda",
    subnetSelectorTerms: [{ tags: { "karpenter.sh/discovery": "fanda" } }],
    securityGroupSelectorTerms: [{ tags: { "karpenter.sh/discovery": "fanda" } }],
    metadataOptions: { httpTokens: "required", httpPutResponseHopLimit: 1 },
  },
};

const application = (env: "dev" | "prod"): IApplication => ({
  apiVersion: "argoproj.io/v1alpha1",
  kind: "Application",
  metadata: {
    name: `fanda-${env}`,
    namespace: "argocd",
    labels: { "app.kubernetes.io/part-of": "fanda" },
  },
  spec: {
    project: "default",
    source: {
      repoURL: "https://github.com/fanda-notifications/fanda.git",
      targetRevision: "main",
      path: `kustomize/overlays/${env}`,
    },
    destination: {
      server: "https://kubernetes.default.svc",
      namespace: env === "dev" ? "fanda-dev" : "fanda",
    },
    syncPolicy: {
      // dev follows main; prod syncs when someone presses the button after the gated overlay commit.
      ...(env === "dev" ? { automated: { prune: true, selfHeal: true } } : {}),
      syncOptions: ["CreateNamespace=true", "ServerSideApply=true"],
    },
    // KEDA owns the replica count.
    ignoreDifferences: [{ group: "apps", kind: "Deployment", jsonPointers: ["/spec/replicas"] }],
  },
});

/** Every generated manifest file. */
export function manifests(): ManifestFile[] {
  return [
    {
      path: "base/serviceaccount.yaml",
      objects: [serviceAccount],
      comment: "Identity of the processor; IRSA role per overlay.",
    },
    {
      path: "base/configmap.yaml",
      objects: [configMap],
      comment: "Non-secret configuration; overlays set brokers, region and recipients.",
    },
    {
      path: "base/externalsecret.yaml",
      objects: [externalSecret],
      comment:
        "Slack token, MySQL and Redis URLs from AWS Secrets Manager (External Secrets Operator).",
    },
    { path: "base/deployment.yaml", objects: [deployment], comment: "The processor." },
    {
      path: "base/service.yaml",
      objects: [service],
      comment: "Health, readiness, metrics and status on one port.",
    },
    { path: "base/pdb.yaml", objects: [pdb], comment: "Disruptions take one consumer at a time." },
    {
      path: "base/networkpolicy.yaml",
      objects: [networkPolicy],
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
      path: "karpenter/nodepool.yaml",
      objects: [nodePool, nodeClass],
      comment: "Workload nodes: spot first, on-demand fallback, consolidation with a budget.",
    },
    {
      path: "argocd/applications.yaml",
      objects: [application("dev"), application("prod")],
      comment: "ArgoCD: dev syncs automatically, prod by hand.",
    },
  ];
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
