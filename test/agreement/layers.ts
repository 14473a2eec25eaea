/**
 * Where the layers of one environment meet, and what must hold there: each check reads the
 * synthesized Pulumi stack and the rendered manifests ({@link Layers}) and returns the
 * disagreements it finds, in words an operator can act on. What the Kafka clients call is
 * checked against IAM in kafka-access.test.ts.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { installs } from "../../scripts/bootstrap-cluster.ts";
import { type K8sObject, podOf } from "../../scripts/validate-manifests.ts";
import { allows, type IamPolicy, resourceArn } from "./kafka-access.ts";
import type { Layers } from "./stacks.ts";

const ROOT = join(import.meta.dir, "..", "..");

// biome-ignore lint/suspicious/noExplicitAny: rendered objects of many shapes.
type Loose = Record<string, any>;

/** A named check of one environment's layers. */
export interface Check {
  name: string;
  run(layers: Layers): string[];
}

/** A stack.env value; a missing key is a disagreement of its own, reported by name. */
function val(l: Layers, key: string): string {
  const v = l.stack[key];
  if (v === undefined) throw new Error(`stack.env has no ${key}`);
  return v;
}

const ofType = (l: Layers, type: string) => l.resources.filter((r) => r.type === type);
const kinds = (objs: K8sObject[], kind: string) => objs.filter((o) => o.kind === kind) as Loose[];

/** The roles the stack creates, by the ARN the mocks give them, with their inline policies. */
function roles(l: Layers) {
  const policies = ofType(l, "aws:iam/rolePolicy:RolePolicy");
  return ofType(l, "aws:iam/role:Role").map((r) => ({
    name: r.name,
    arn: `arn:aws:iam::${l.stack.account}:role/${r.inputs.name ?? r.name}`,
    trust: JSON.parse(r.inputs.assumeRolePolicy ?? "{}") as Loose,
    policy: {
      Statement: policies
        .filter((p) => p.inputs.role === `${r.name}-id`)
        .flatMap((p) => (JSON.parse(p.inputs.policy) as IamPolicy).Statement),
    } as IamPolicy,
  }));
}

/** The `system:serviceaccount:<ns>:<name>` subjects a role's IRSA trust admits. */
function irsaSubjects(trust: Loose): string[] {
  return [trust.Statement]
    .flat()
    .filter((s: Loose) => s?.Action === "sts:AssumeRoleWithWebIdentity")
    .flatMap((s: Loose) =>
      Object.entries((s.Condition?.StringEquals ?? {}) as Record<string, string>)
        .filter(([k]) => k.endsWith(":sub"))
        .map(([, v]) => v),
    );
}

function roleFor(l: Layers, namespace: string, serviceAccount: string) {
  return roles(l).find((r) =>
    irsaSubjects(r.trust).includes(`system:serviceaccount:${namespace}:${serviceAccount}`),
  );
}

/** IPv4 CIDR `inner` lies within `outer`. */
export function cidrContains(outer: string, inner: string): boolean {
  const parse = (c: string) => {
    const [ip, bits] = c.split("/");
    const n = (ip ?? "").split(".").reduce((a, o) => a * 256 + Number(o), 0);
    return { n, bits: Number(bits) };
  };
  const o = parse(outer);
  const i = parse(inner);
  if (!(o.bits <= i.bits)) return false;
  const block = 2 ** (32 - o.bits);
  return Math.floor(o.n / block) === Math.floor(i.n / block);
}

const mskCluster = (l: Layers) => ofType(l, "aws:msk/cluster:Cluster")[0];

/** Every check, in the order an operator would meet the failures. */
export const CHECKS: Check[] = [
  {
    name: "every ServiceAccount's IRSA role trusts exactly that namespace and ServiceAccount",
    run(l) {
      const problems: string[] = [];
      const accounts = kinds(l.overlay, "ServiceAccount");
      if (accounts.length === 0) problems.push("the overlay has no ServiceAccount");
      for (const sa of accounts) {
        const arn = sa.metadata.annotations?.["eks.amazonaws.com/role-arn"];
        const subject = `system:serviceaccount:${sa.metadata.namespace}:${sa.metadata.name}`;
        const role = roles(l).find((r) => r.arn === arn);
        if (!role)
          problems.push(`ServiceAccount ${sa.metadata.name}: role ${arn} is not in the stack`);
        else if (!irsaSubjects(role.trust).includes(subject))
          problems.push(
            `ServiceAccount ${sa.metadata.name}: role ${role.name} trusts ${irsaSubjects(role.trust).join(", ") || "nobody"}, not ${subject}`,
          );
      }
      for (const o of l.overlay) {
        const pod = podOf(o) as Loose | undefined;
        if (pod && !accounts.some((a) => a.metadata.name === pod.serviceAccountName))
          problems.push(
            `${o.kind}/${o.metadata?.name}: runs as ${pod.serviceAccountName}, which has no IRSA role here`,
          );
      }
      return problems;
    },
  },
  {
    name: "NetworkPolicy egress reaches the stack's VPC on every data port it opens",
    run(l) {
      const problems: string[] = [];
      const ports: [number, string][] = [
        [Number(l.stack.kafkaPort), "MSK IAM"],
        [
          Number(ofType(l, "aws:elasticache/replicationGroup:ReplicationGroup")[0]?.inputs.port),
          "Redis",
        ],
        [3306, "MySQL"],
      ];
      const dbSg = ofType(l, "aws:ec2/securityGroup:SecurityGroup").find(
        (s) => s.name === "fanda-mysql",
      );
      if (dbSg?.inputs.ingress?.[0]?.fromPort !== 3306)
        problems.push("the stack opens MySQL on another port than 3306");
      const mskPorts = ofType(l, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule").map(
        (r) => r.inputs.fromPort,
      );
      if (!mskPorts.every((p) => p === Number(l.stack.kafkaPort)))
        problems.push(
          `MSK admits ${mskPorts.join(",")} but stack.env says port ${l.stack.kafkaPort}`,
        );
      if (
        !val(l, "kafkaBrokers")
          .split(",")
          .every((b) => b.endsWith(`:${l.stack.kafkaPort}`))
      )
        problems.push(`brokers ${l.stack.kafkaBrokers} are not all on port ${l.stack.kafkaPort}`);
      const vpc = ofType(l, "aws:ec2/vpc:Vpc")[0]?.inputs.cidrBlock as string;
      const egress = kinds(l.overlay, "NetworkPolicy").flatMap(
        (p) => (p.spec.egress ?? []) as Loose[],
      );
      for (const [port, what] of ports) {
        const open = egress.some(
          (rule) =>
            (rule.ports ?? []).some(
              (p: Loose) => p.port === port && (p.protocol ?? "TCP") === "TCP",
            ) && (rule.to ?? []).some((t: Loose) => t.ipBlock && cidrContains(t.ipBlock.cidr, vpc)),
        );
        if (!open) problems.push(`no egress to the VPC ${vpc} on ${port} (${what})`);
      }
      const cluster = ofType(l, "eks:index:Cluster")[0]?.inputs;
      if (cluster?.vpcCniOptions?.enableNetworkPolicy !== true)
        problems.push(
          "the EKS VPC CNI does not enforce NetworkPolicies (vpcCniOptions.enableNetworkPolicy)",
        );
      return problems;
    },
  },
  {
    name: "KEDA scales with a Kafka scaler spelled for MSK IAM, under an identity that may read the lag",
    run(l) {
      const problems: string[] = [];
      const so = kinds(l.overlay, "ScaledObject")[0];
      const trigger = so?.spec.triggers?.[0] as Loose | undefined;
      if (!trigger) return ["no ScaledObject trigger"];
      const m = trigger.metadata as Record<string, string>;
      // KEDA's two Kafka scalers spell MSK IAM differently (keda.sh scalers/apache-kafka and
      // scalers/apache-kafka-go): Sarama's `kafka` takes OAUTHBEARER with a token provider,
      // kafka-go's `apache-kafka` takes `sasl: aws_msk_iam`.
      const expected: Record<string, Record<string, string>> = {
        kafka: { sasl: "oauthbearer", saslTokenProvider: "aws_msk_iam", tls: "enable" },
        "apache-kafka": { sasl: "aws_msk_iam", tls: "enable" },
      };
      const want = expected[trigger.type as string];
      if (!want) problems.push(`trigger type ${trigger.type} is not a Kafka scaler`);
      else {
        for (const [k, v] of Object.entries(want))
          if (m[k] !== v)
            problems.push(`${trigger.type} scaler: ${k} is ${m[k] ?? "unset"}, expected ${v}`);
        for (const k of Object.keys(m))
          if (k === "saslTokenProvider" && !("saslTokenProvider" in want))
            problems.push(`${trigger.type} scaler has no ${k} parameter`);
      }
      if (m.bootstrapServers !== l.stack.kafkaBrokers)
        problems.push(
          `bootstrapServers ${m.bootstrapServers} are not the stack's ${l.stack.kafkaBrokers}`,
        );
      if (m.awsRegion !== l.stack.region)
        problems.push(`awsRegion ${m.awsRegion} is not ${l.stack.region}`);
      const auth = kinds(l.overlay, "TriggerAuthentication").find(
        (a) => a.metadata.name === trigger.authenticationRef?.name,
      );
      if (auth?.spec.podIdentity?.provider !== "aws")
        problems.push("the trigger does not authenticate with the aws pod identity");
      const [ns, sa] = val(l, "kedaServiceAccount").split("/") as [string, string];
      const role = roleFor(l, ns, sa);
      if (!role) problems.push(`no role trusts KEDA's operator ${ns}/${sa}`);
      else {
        for (const [action, arn] of [
          ["kafka-cluster:Connect", val(l, "mskClusterArn")],
          [
            "kafka-cluster:DescribeTopic",
            resourceArn(val(l, "mskClusterArn"), "topic", m.topic ?? ""),
          ],
          [
            "kafka-cluster:DescribeGroup",
            resourceArn(val(l, "mskClusterArn"), "group", m.consumerGroup ?? ""),
          ],
        ] as const)
          if (!allows(role.policy, action, arn))
            problems.push(`KEDA's role may not ${action} on ${arn}`);
      }
      const cm = configMapOf(l.overlay);
      if (m.consumerGroup !== cm?.data?.KAFKA_GROUP_ID || m.topic !== cm?.data?.KAFKA_TOPIC)
        problems.push("KEDA watches another group or topic than the processor consumes");
      return problems;
    },
  },
  {
    name: "every secret and property the ExternalSecret reads is created by the stack, through a store it may read",
    run(l) {
      const problems: string[] = [];
      const es = kinds(l.overlay, "ExternalSecret")[0];
      if (!es) return ["no ExternalSecret"];
      const secrets = ofType(l, "aws:secretsmanager/secret:Secret");
      const versions = ofType(l, "aws:secretsmanager/secretVersion:SecretVersion");
      const rds = ofType(l, "aws:rds/instance:Instance")[0];
      const readable: string[] = [];
      for (const d of es.spec.data as {
        secretKey: string;
        remoteRef: { key: string; property?: string };
      }[]) {
        const { key, property } = d.remoteRef;
        if (key === l.stack.databaseSecret && rds?.inputs.manageMasterUserPassword === true) {
          // RDS-managed master secrets hold {"username","password"} (RDS user guide,
          // "Password management with Amazon RDS and Secrets Manager").
          if (!["username", "password"].includes(property ?? ""))
            problems.push(`${d.secretKey}: the RDS-managed secret has no property ${property}`);
          readable.push(key);
          continue;
        }
        const secret = secrets.find((s) => s.inputs.name === key);
        if (!secret) {
          problems.push(`${d.secretKey}: secret ${key} is not created by the stack`);
          continue;
        }
        readable.push(secret.inputs.name);
        const version = versions.find((v) => v.inputs.secretId === `${secret.name}-id`);
        if (property !== undefined) {
          let value: Record<string, unknown> = {};
          try {
            value = JSON.parse(String(unsecret(version?.inputs.secretString) ?? "")) as Record<
              string,
              unknown
            >;
          } catch {
            // not JSON: no properties
          }
          if (!(property in value))
            problems.push(`${d.secretKey}: secret ${key} has no property ${property}`);
        }
      }
      // The template uses only what the ExternalSecret fetches, and yields what the processor reads.
      const template = es.spec.target?.template?.data as Record<string, string> | undefined;
      const fetched = new Set((es.spec.data as { secretKey: string }[]).map((d) => d.secretKey));
      for (const [name, text] of Object.entries(template ?? {}))
        for (const [, v] of text.matchAll(/\{\{\s*\.(\w+)/g))
          if (!fetched.has(v as string))
            problems.push(`${name} uses .${v}, which is never fetched`);
      // The processor reads its settings in config.ts and its channels' in their plugins.
      const config = [...new Bun.Glob("processor/src/**/*.ts").scanSync({ cwd: ROOT })]
        .filter((f) => !f.includes(".test."))
        .map((f) => readFileSync(join(ROOT, f), "utf8"))
        .join("\n");
      for (const name of Object.keys(template ?? {}))
        if (!new RegExp(`\\b${name}\\b`).test(config))
          problems.push(`the secret's ${name} is not read by the processor`);
      for (const o of l.overlay) {
        const pod = podOf(o) as Loose | undefined;
        for (const c of (pod?.containers ?? []) as Loose[])
          for (const f of (c.envFrom ?? []) as Loose[])
            if (f.secretRef && f.secretRef.name !== es.spec.target.name)
              problems.push(
                `${o.kind}/${o.metadata?.name} reads Secret ${f.secretRef.name}, which nothing creates`,
              );
      }
      const store = kinds(l.platform, "ClusterSecretStore").find(
        (s) => s.metadata.name === es.spec.secretStoreRef.name,
      );
      if (es.spec.secretStoreRef.kind !== "ClusterSecretStore" || !store)
        problems.push(`the store ${es.spec.secretStoreRef.name} is not in the platform objects`);
      else {
        if (store.spec.provider?.aws?.region !== l.stack.region)
          problems.push(
            `the store reads region ${store.spec.provider?.aws?.region}, not ${l.stack.region}`,
          );
        const allowed = (store.spec.conditions ?? []).flatMap((c: Loose) => c.namespaces ?? []);
        if (!allowed.includes(es.metadata.namespace))
          problems.push(`the store does not serve namespace ${es.metadata.namespace}`);
      }
      const [ns, sa] = val(l, "externalSecretsServiceAccount").split("/") as [string, string];
      const role = roleFor(l, ns, sa);
      if (!role) problems.push(`no role trusts External Secrets' controller ${ns}/${sa}`);
      else
        for (const name of readable) {
          const arn = name.startsWith("arn:")
            ? name
            : `arn:aws:secretsmanager:${l.stack.region}:${l.stack.account}:secret:${name}-AbCdEf`;
          if (!allows(role.policy, "secretsmanager:GetSecretValue", arn))
            problems.push(`External Secrets' role may not read ${name}`);
        }
      return problems;
    },
  },
  {
    name: "topics are replicated no more than the brokers allow, and one broker down never blocks writes",
    run(l) {
      const cluster = mskCluster(l);
      const brokers = Number(cluster?.inputs.numberOfBrokerNodes);
      const props = String(
        ofType(l, "aws:msk/configuration:Configuration")[0]?.inputs.serverProperties ?? "",
      );
      const prop = (k: string) => Number(props.match(new RegExp(`^${k}=(\\d+)$`, "m"))?.[1]);
      return replicationProblems(
        brokers,
        prop("default.replication.factor"),
        prop("min.insync.replicas"),
      );
    },
  },
  {
    name: "each cluster's Argo CD runs only its own environment, under a project that allows only that",
    run(l) {
      const problems: string[] = [];
      const project = kinds(l.argocd, "AppProject")[0];
      const apps = kinds(l.argocd, "Application");
      if (!project) problems.push("no AppProject");
      if (apps.length === 0) problems.push("no Application");
      const wanted = [`kustomize/overlays/${l.env}`, `kustomize/platform/${l.env}`];
      for (const app of apps) {
        const where = `Application ${app.metadata.name}`;
        if (app.spec.project !== project?.metadata.name)
          problems.push(`${where}: project ${app.spec.project} is not ${project?.metadata.name}`);
        if (!wanted.includes(app.spec.source.path))
          problems.push(
            `${where}: deploys ${app.spec.source.path}, not this environment (${l.env})`,
          );
        if (app.spec.source.repoURL !== l.stack.repoUrl)
          problems.push(
            `${where}: repository ${app.spec.source.repoURL} is not ${l.stack.repoUrl}`,
          );
        if (app.spec.destination.server !== "https://kubernetes.default.svc")
          problems.push(`${where}: targets ${app.spec.destination.server}, not its own cluster`);
        if (app.spec.destination.namespace !== l.stack.namespace)
          problems.push(
            `${where}: namespace ${app.spec.destination.namespace} is not ${l.stack.namespace}`,
          );
        const ignored = (app.spec.ignoreDifferences ?? []).some(
          (d: Loose) => d.kind === "Deployment" && d.jsonPointers?.includes("/spec/replicas"),
        );
        if (
          !ignored ||
          !app.spec.syncPolicy?.syncOptions?.includes("RespectIgnoreDifferences=true")
        )
          problems.push(`${where}: a sync would reset the replica count KEDA set`);
        if (!(Number(app.spec.syncPolicy?.retry?.limit) > 0))
          problems.push(`${where}: a failed sync (an image not pushed yet) is never retried`);
      }
      if (project) {
        if (JSON.stringify(project.spec.sourceRepos) !== JSON.stringify([l.stack.repoUrl]))
          problems.push(`the project allows sources ${project.spec.sourceRepos}`);
        for (const d of project.spec.destinations ?? [])
          if (d.server !== "https://kubernetes.default.svc" || d.namespace !== l.stack.namespace)
            problems.push(`the project allows destination ${d.server} ${d.namespace}`);
      }
      for (const d of kinds(l.overlay, "Deployment"))
        if (d.spec.replicas !== undefined)
          problems.push(`Deployment ${d.metadata.name} sets replicas; KEDA owns them`);
      return problems;
    },
  },
  {
    name: "images come from the stack's ECR repository, at a tag CI pushes",
    run(l) {
      const problems: string[] = [];
      const repo = ofType(l, "aws:ecr/repository:Repository")[0];
      const url = `${l.stack.account}.dkr.ecr.${l.stack.region}.amazonaws.com/${repo?.inputs.name}`;
      if (l.stack.ecrRepository !== url)
        problems.push(`stack.env's repository ${l.stack.ecrRepository} is not the stack's ${url}`);
      if (repo?.inputs.imageTagMutability !== "IMMUTABLE")
        problems.push("the repository's tags are mutable");
      for (const o of l.overlay) {
        for (const c of ((podOf(o) as Loose | undefined)?.containers ?? []) as Loose[]) {
          const [name, tag] = String(c.image).split(/:(?=[^:]+$)/);
          if (name !== url)
            problems.push(`${o.kind}/${o.metadata?.name}: image ${c.image} is not from ${url}`);
          if (!/^[0-9a-f]{40}$/.test(tag ?? ""))
            problems.push(
              `${o.kind}/${o.metadata?.name}: tag ${tag} is not a commit SHA CI pushes`,
            );
        }
      }
      return problems;
    },
  },
  {
    name: "Karpenter's nodes use the stack's node role and discovery tags, and its controller has an identity",
    run(l) {
      const problems: string[] = [];
      const nc = kinds(l.platform, "EC2NodeClass")[0];
      const nodeRole = ofType(l, "aws:iam/role:Role").find((r) => r.name === "fanda-nodes");
      if (nc?.spec.role !== nodeRole?.inputs.name)
        problems.push(
          `EC2NodeClass role ${nc?.spec.role} is not the stack's ${nodeRole?.inputs.name}`,
        );
      const tag = (terms: Loose[]) => terms?.[0]?.tags?.["karpenter.sh/discovery"];
      const subnets = ofType(l, "aws:ec2/subnet:Subnet").filter((s) => s.name.includes("private"));
      const subnetTags = new Set(subnets.map((s) => s.inputs.tags?.["karpenter.sh/discovery"]));
      if (subnetTags.size !== 1 || !subnetTags.has(tag(nc?.spec.subnetSelectorTerms)))
        problems.push(
          `EC2NodeClass selects subnets tagged ${tag(nc?.spec.subnetSelectorTerms)}; the stack tags ${[...subnetTags]}`,
        );
      const cluster = ofType(l, "eks:index:Cluster")[0]?.inputs;
      // The nodes' security group (the EKS cluster's, which MSK, RDS and Redis admit) must carry
      // the tag the EC2NodeClass selects by, or Karpenter's nodes get a group nothing admits.
      const sgTag = ofType(l, "aws:ec2/tag:Tag").find(
        (t) => t.inputs.key === "karpenter.sh/discovery",
      )?.inputs;
      const admitted = ofType(l, "aws:ec2/securityGroup:SecurityGroup")
        .filter((g) => ["fanda-mysql", "fanda-redis"].includes(g.name))
        .map((g) => g.inputs.ingress?.[0]?.securityGroups?.[0]);
      if (
        sgTag?.value !== tag(nc?.spec.securityGroupSelectorTerms) ||
        !admitted.every((g) => g === sgTag?.resourceId)
      )
        problems.push(
          "EC2NodeClass selects security groups by a tag the group the data stores admit does not carry",
        );
      if (cluster?.name !== l.stack.clusterName)
        problems.push(`the cluster is not named ${l.stack.clusterName}`);
      const [ns, sa] = val(l, "karpenterServiceAccount").split("/") as [string, string];
      const role = roleFor(l, ns, sa);
      if (!role) problems.push(`no role trusts Karpenter's controller ${ns}/${sa}`);
      else {
        const statements = [role.policy.Statement].flat();
        const pass = statements.find((s) => [s.Action].flat().includes("iam:PassRole"));
        const nodeRoleArn = `arn:aws:iam::${l.stack.account}:role/${nodeRole?.inputs.name}`;
        if (JSON.stringify(pass?.Resource) !== JSON.stringify([nodeRoleArn]))
          problems.push(
            `Karpenter may pass ${JSON.stringify(pass?.Resource)}, not only the node role`,
          );
        const queue = statements.find((s) => [s.Action].flat().includes("sqs:ReceiveMessage"));
        if (
          ![queue?.Resource]
            .flat()
            .some((r) => String(r).endsWith(`:${l.stack.karpenterInterruptionQueue}`))
        )
          problems.push("Karpenter may not read its interruption queue");
      }
      return problems;
    },
  },
  {
    name: "each add-on is installed under the ServiceAccount its role trusts, with that role",
    run(l) {
      const problems: string[] = [];
      let planned: ReturnType<typeof installs>;
      try {
        planned = installs(l.stack);
      } catch (err) {
        return [(err as Error).message];
      }
      for (const i of planned.filter((x) => x.identity)) {
        const { serviceAccount, roleArn } = i.identity as {
          serviceAccount: string;
          roleArn: string;
        };
        const role = roleFor(l, i.namespace, serviceAccount);
        if (!role) problems.push(`${i.release}: no role trusts ${i.namespace}/${serviceAccount}`);
        else if (role.arn !== roleArn)
          problems.push(
            `${i.release}: annotated with ${roleArn}, but ${role.arn} is the role that trusts it`,
          );
      }
      return problems;
    },
  },
  {
    name: "the monitoring stack the bootstrap installs finds the processor's monitors and may scrape it",
    run(l) {
      const problems: string[] = [];
      const prometheus = installs(l.stack).find((i) => i.chart === "kube-prometheus-stack");
      if (!prometheus) return ["the bootstrap installs no kube-prometheus-stack"];
      // The chart's Prometheus selects ServiceMonitors and PrometheusRules by `release: <release>`.
      for (const o of l.overlay.filter((x) =>
        ["ServiceMonitor", "PrometheusRule"].includes(x.kind),
      ))
        if (o.metadata?.labels?.release !== prometheus.release)
          problems.push(
            `${o.kind}/${o.metadata?.name}: label release=${o.metadata?.labels?.release}, Prometheus selects release=${prometheus.release}`,
          );
      const scrape = kinds(l.overlay, "NetworkPolicy")
        .flatMap((p) => (p.spec.ingress ?? []) as Loose[])
        .filter((r) => (r.ports ?? []).some((p: Loose) => p.port === 8080));
      const from = scrape.flatMap((r) =>
        (r.from ?? []).map(
          (f: Loose) => f.namespaceSelector?.matchLabels?.["kubernetes.io/metadata.name"],
        ),
      );
      if (!from.includes(prometheus.namespace))
        problems.push(
          `the processor admits scrapes from ${from.join(", ") || "nowhere"}, Prometheus runs in ${prometheus.namespace}`,
        );
      return problems;
    },
  },
  {
    name: "the processor's settings match what the stack built",
    run(l) {
      const problems: string[] = [];
      const cm = configMapOf(l.overlay)?.data ?? {};
      const domain = ofType(l, "aws:sesv2/emailIdentity:EmailIdentity")[0]?.inputs.emailIdentity;
      if (!String(cm.SES_FROM).endsWith(`@${domain}`))
        problems.push(`SES_FROM ${cm.SES_FROM} is not an address of the verified domain ${domain}`);
      if (cm.KAFKA_BROKERS !== l.stack.kafkaBrokers)
        problems.push("KAFKA_BROKERS is not the stack's brokers");
      if (cm.AWS_REGION !== l.stack.region) problems.push("AWS_REGION is not the stack's region");
      if (cm.KAFKA_AUTH !== "iam") problems.push("MSK accepts IAM only, but KAFKA_AUTH is not iam");
      const lambda =
        ofType(l, "aws:lambda/function:Function")[0]?.inputs.environment?.variables ?? {};
      if (lambda.KAFKA_TOPIC !== cm.KAFKA_TOPIC)
        problems.push(
          `the Lambda publishes to ${lambda.KAFKA_TOPIC}, the processor reads ${cm.KAFKA_TOPIC}`,
        );
      const job = kinds(l.overlay, "Job").find((j) => j.metadata.name === "fanda-topics");
      const c = job?.spec.template.spec.containers[0] as Loose | undefined;
      const env = Object.fromEntries(((c?.env ?? []) as Loose[]).map((e) => [e.name, e.value]));
      if (env.KAFKA_TOPIC !== cm.KAFKA_TOPIC || env.KAFKA_BROKERS !== cm.KAFKA_BROKERS)
        problems.push(
          "the topic Job creates another topic, or on other brokers, than the processor uses",
        );
      const args = (c?.args ?? []) as string[];
      if (args[args.indexOf("--partitions") + 1] !== l.stack.partitions)
        problems.push(
          `the topic Job creates ${args[args.indexOf("--partitions") + 1]} partitions, the stack says ${l.stack.partitions}`,
        );
      if (job?.metadata.annotations?.["argocd.argoproj.io/hook"] !== "PreSync")
        problems.push("topic creation does not run before the sync");
      return problems;
    },
  },
];

/** Replication settings that cannot work on `brokers` brokers. */
export function replicationProblems(brokers: number, rf: number, minIsr: number): string[] {
  const problems: string[] = [];
  if (!(rf >= 1 && rf <= brokers))
    problems.push(`default.replication.factor ${rf} does not fit ${brokers} brokers`);
  if (!(minIsr >= 1 && minIsr < rf))
    problems.push(
      `min.insync.replicas ${minIsr} is not below the replication factor ${rf}: one broker down blocks writes`,
    );
  return problems;
}

/** Pulumi marks secret inputs with a signature key; the value sits beside it. */
function unsecret(v: unknown): unknown {
  return v && typeof v === "object" && "value" in v ? (v as { value: unknown }).value : v;
}

function configMapOf(objs: K8sObject[]): Loose | undefined {
  return objs.find(
    (o) => o.kind === "ConfigMap" && o.metadata?.name?.startsWith("fanda-processor-"),
  );
}

/** Every disagreement between the layers of one environment, prefixed by its check. */
export function agreementProblems(l: Layers): string[] {
  return CHECKS.flatMap((c) => c.run(l).map((p) => `${l.env}: ${c.name}: ${p}`));
}
