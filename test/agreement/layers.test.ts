/**
 * The layers agree, for dev and prod: the Pulumi stack (synthesized offline), the committed
 * stack.env, and the overlay, platform and Argo CD objects rendered from it. Each check also
 * meets the broken variant it exists for and must name it.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { ENVIRONMENTS, parseStackEnv, stackEnvPath } from "../../scripts/env-sync.ts";
import { agreementProblems, CHECKS, cidrContains, replicationProblems } from "./layers.ts";
import { type Layers, loadLayers } from "./stacks.ts";

// biome-ignore lint/suspicious/noExplicitAny: the tests poke into objects of many shapes.
type Loose = Record<string, any>;

const layers: Partial<Record<(typeof ENVIRONMENTS)[number], Layers>> = {};

beforeAll(async () => {
  for (const env of ENVIRONMENTS) layers[env] = await loadLayers(env);
}, 120_000);

const get = (env: "dev" | "prod") => {
  const l = layers[env];
  if (!l) throw new Error(`layers of ${env} did not load`);
  return structuredClone(l);
};
const run = (name: string, l: Layers) => {
  const check = CHECKS.find((c) => c.name.startsWith(name));
  if (!check) throw new Error(`no check named ${name}`);
  return check.run(l).join("\n");
};
const obj = (objs: Loose[], kind: string, name?: string) =>
  objs.find((o) => o.kind === kind && (!name || o.metadata.name === name)) as Loose;
const resource = (l: Layers, type: string, name?: string) =>
  l.resources.find((r) => r.type === type && (!name || r.name === name)) as Loose;

describe.each(ENVIRONMENTS)("%s: the layers agree", (env) => {
  test("every check passes", () => {
    expect(agreementProblems(get(env))).toEqual([]);
  });

  test("the committed stack.env has the stack's keys, and its config-derived values are current", () => {
    const committed = parseStackEnv(readFileSync(stackEnvPath(env), "utf8"));
    const synthesized = get(env).stack;
    expect(Object.keys(committed).sort()).toEqual(Object.keys(synthesized).sort());
    // Values that come from the stack configuration alone (not from AWS): a config change that
    // was not followed by `pulumi up` + env-sync shows here.
    for (const key of [
      "environment",
      "region",
      "clusterName",
      "vpcCidr",
      "namespace",
      "repoUrl",
      "processorServiceAccount",
      "replayServiceAccount",
      "topicsServiceAccount",
      "kedaServiceAccount",
      "externalSecretsServiceAccount",
      "karpenterServiceAccount",
      "topic",
      "consumerGroup",
      "partitions",
      "replicationFactor",
      "kafkaPort",
      "sesFrom",
      "slackChannel",
      "emailTo",
      "slackSecret",
      "redisAuthSecret",
      "endpointsSecret",
      "karpenterNodeRole",
    ])
      expect(`${key}=${committed[key]}`).toBe(`${key}=${synthesized[key]}`);
  });
});

test("dev and prod are different places: namespaces, CIDRs, clusters, repositories, secrets", () => {
  const dev = get("dev").stack;
  const prod = get("prod").stack;
  for (const key of [
    "namespace",
    "vpcCidr",
    "clusterName",
    "ecrRepository",
    "slackSecret",
    "endpointsSecret",
  ])
    expect(`${key}=${dev[key]}`).not.toBe(`${key}=${prod[key]}`);
});

describe("each check names the broken variant it exists for", () => {
  test("IRSA: the role trusts another namespace than the overlay deploys into", () => {
    const l = get("dev");
    const role = resource(l, "aws:iam/role:Role", "fanda-processor");
    role.inputs.assumeRolePolicy = role.inputs.assumeRolePolicy.replace(
      "system:serviceaccount:fanda-dev:",
      "system:serviceaccount:fanda:",
    );
    expect(run("every ServiceAccount", l)).toContain(
      "role fanda-processor trusts system:serviceaccount:fanda:fanda-processor, not system:serviceaccount:fanda-dev:fanda-processor",
    );
  });

  test("NetworkPolicy: egress to a CIDR that is not the stack's VPC, and no enforcement", () => {
    const l = get("dev");
    obj(l.overlay, "NetworkPolicy", "fanda-default").spec.egress[1].to[0].ipBlock.cidr =
      "10.0.0.0/16";
    delete resource(l, "eks:index:Cluster").inputs.vpcCniOptions;
    const problems = run("NetworkPolicy", l);
    expect(problems).toContain("no egress to the VPC 10.10.0.0/16 on 9098 (MSK IAM)");
    expect(problems).toContain("on 6379 (Redis)");
    expect(problems).toContain("on 3306 (MySQL)");
    expect(problems).toContain("does not enforce NetworkPolicies");
    expect(cidrContains("10.0.0.0/8", "10.10.0.0/16")).toBe(true);
    expect(cidrContains("10.0.0.0/16", "10.10.0.0/16")).toBe(false);
  });

  test("KEDA: the other scaler's SASL parameters, a placeholder broker, no identity", () => {
    const l = get("prod");
    const trigger = obj(l.overlay, "ScaledObject").spec.triggers[0];
    trigger.type = "apache-kafka";
    trigger.metadata.bootstrapServers = "b-1.msk.example.internal:9098";
    l.resources = l.resources.filter(
      (r) => !(r.type === "aws:iam/role:Role" && r.name === "fanda-keda"),
    );
    const problems = run("KEDA", l);
    expect(problems).toContain("apache-kafka scaler: sasl is oauthbearer, expected aws_msk_iam");
    expect(problems).toContain("apache-kafka scaler has no saslTokenProvider parameter");
    expect(problems).toContain(
      "bootstrapServers b-1.msk.example.internal:9098 are not the stack's",
    );
    expect(problems).toContain("no role trusts KEDA's operator keda/keda-operator");
  });

  test("KEDA: an operator role that may not describe the group", () => {
    const l = get("dev");
    const policy = resource(l, "aws:iam/rolePolicy:RolePolicy", "fanda-keda");
    policy.inputs.policy = policy.inputs.policy.replace(
      "kafka-cluster:DescribeGroup",
      "kafka-cluster:DescribeTopic",
    );
    expect(run("KEDA", l)).toContain("KEDA's role may not kafka-cluster:DescribeGroup");
  });

  test("secrets: names and properties the stack never creates, no store, no role", () => {
    const l = get("dev");
    const es = obj(l.overlay, "ExternalSecret");
    es.spec.data.find((d: Loose) => d.secretKey === "mysqlHost").remoteRef = {
      key: "fanda/mysql",
      property: "url",
    };
    es.spec.data.find((d: Loose) => d.secretKey === "redisPort").remoteRef.property = "port";
    es.spec.target.template.data.MYSQL_URL += "{{ .mysqlUrl }}";
    l.platform = l.platform.filter((o) => o.kind !== "ClusterSecretStore");
    l.resources = l.resources.filter(
      (r) => !(r.type === "aws:iam/role:Role" && r.name === "fanda-external-secrets"),
    );
    const problems = run("every secret", l);
    expect(problems).toContain("mysqlHost: secret fanda/mysql is not created by the stack");
    expect(problems).toContain("redisPort: secret fanda/dev/endpoints has no property port");
    expect(problems).toContain("MYSQL_URL uses .mysqlUrl, which is never fetched");
    expect(problems).toContain(
      "the store fanda-aws-secrets-manager is not in the platform objects",
    );
    expect(problems).toContain("no role trusts External Secrets' controller");
  });

  test("secrets: a role that may not read the RDS-managed secret", () => {
    const l = get("prod");
    const policy = resource(l, "aws:iam/rolePolicy:RolePolicy", "fanda-external-secrets");
    const doc = JSON.parse(policy.inputs.policy);
    doc.Statement[0].Resource = doc.Statement[0].Resource.filter(
      (r: string) => !r.includes("rds!"),
    );
    policy.inputs.policy = JSON.stringify(doc);
    expect(run("every secret", l)).toContain(
      `External Secrets' role may not read ${l.stack.databaseSecret}`,
    );
  });

  test("replication: RF 3 on dev's 2 brokers, and min.insync.replicas equal to RF", () => {
    const l = get("dev");
    const config = resource(l, "aws:msk/configuration:Configuration");
    config.inputs.serverProperties = config.inputs.serverProperties
      .replace(/default.replication.factor=\d+/, "default.replication.factor=3")
      .replace(/min.insync.replicas=\d+/, "min.insync.replicas=2");
    const problems = run("topics are replicated", l);
    expect(problems).toContain("default.replication.factor 3 does not fit 2 brokers");
    expect(replicationProblems(3, 2, 2).join()).toContain("min.insync.replicas 2 is not below");
    expect(replicationProblems(3, 3, 2)).toEqual([]);
  });

  test("Argo CD: an Application of the other environment, another cluster, replicas reset", () => {
    const l = get("dev");
    const app = obj(l.argocd, "Application", "fanda");
    app.spec.source.path = "kustomize/overlays/prod";
    app.spec.destination.server = "https://prod.example.eks.amazonaws.com";
    app.spec.syncPolicy.syncOptions = ["CreateNamespace=true"];
    delete app.spec.syncPolicy.retry;
    obj(l.argocd, "AppProject").spec.sourceRepos = ["*"];
    obj(l.overlay, "Deployment").spec.replicas = 2;
    const problems = run("each cluster's Argo CD", l);
    expect(problems).toContain("deploys kustomize/overlays/prod, not this environment (dev)");
    expect(problems).toContain(
      "targets https://prod.example.eks.amazonaws.com, not its own cluster",
    );
    expect(problems).toContain("a sync would reset the replica count KEDA set");
    expect(problems).toContain("a failed sync (an image not pushed yet) is never retried");
    expect(problems).toContain("the project allows sources *");
    expect(problems).toContain("Deployment fanda-processor sets replicas");
  });

  test("images: another registry, or a tag CI never pushes", () => {
    const l = get("prod");
    const d = obj(l.overlay, "Deployment");
    d.spec.template.spec.containers[0].image =
      "000000000000.dkr.ecr.ap-northeast-2.amazonaws.com/fanda-processor:dev";
    const problems = run("images", l);
    expect(problems).toContain("is not from");
    expect(problems).toContain("tag dev is not a commit SHA CI pushes");
  });

  test("Karpenter: a node class with another role and tag, a controller without identity", () => {
    const l = get("dev");
    const nc = obj(l.platform, "EC2NodeClass");
    nc.spec.role = "KarpenterNodeRole-fanda";
    nc.spec.subnetSelectorTerms[0].tags["karpenter.sh/discovery"] = "fanda";
    resource(l, "aws:ec2/tag:Tag").inputs.value = "fanda";
    l.resources = l.resources.filter(
      (r) => !(r.type === "aws:iam/role:Role" && r.name === "fanda-karpenter"),
    );
    const problems = run("Karpenter", l);
    expect(problems).toContain("EC2NodeClass role KarpenterNodeRole-fanda is not the stack's");
    expect(problems).toContain("EC2NodeClass selects subnets tagged fanda");
    expect(problems).toContain("selects security groups by a tag the group the data stores admit");
    expect(problems).toContain("no role trusts Karpenter's controller kube-system/karpenter");
  });

  test("add-ons: a role that trusts another ServiceAccount than the chart creates", () => {
    const l = get("dev");
    const role = resource(l, "aws:iam/role:Role", "fanda-external-secrets");
    role.inputs.assumeRolePolicy = role.inputs.assumeRolePolicy.replace(
      "external-secrets:external-secrets",
      "external-secrets:eso",
    );
    expect(run("each add-on", l)).toContain(
      "external-secrets: no role trusts external-secrets/external-secrets",
    );
    const renamed = get("dev");
    renamed.stack.kedaServiceAccount = "keda/keda";
    expect(run("each add-on", renamed)).toContain(
      "kedaServiceAccount: the stack trusts keda/keda, the chart creates keda-operator",
    );
  });

  test("monitoring: a ServiceMonitor Prometheus does not select, scrapes admitted from elsewhere", () => {
    const l = get("prod");
    obj(l.overlay, "ServiceMonitor").metadata.labels.release = "prometheus";
    obj(
      l.overlay,
      "NetworkPolicy",
      "fanda-processor-metrics",
    ).spec.ingress[0].from[0].namespaceSelector.matchLabels["kubernetes.io/metadata.name"] =
      "observability";
    const problems = run("the monitoring stack", l);
    expect(problems).toContain(
      "ServiceMonitor/fanda-processor: label release=prometheus, Prometheus selects release=kube-prometheus-stack",
    );
    expect(problems).toContain(
      "the processor admits scrapes from observability, Prometheus runs in monitoring",
    );
  });

  test("processor settings: a sender outside the verified domain, another topic for the Job", () => {
    const l = get("dev");
    const cm = l.overlay.find(
      (o) => o.kind === "ConfigMap" && o.metadata?.name?.startsWith("fanda-processor-"),
    ) as Loose;
    cm.data.SES_FROM = "fanda@example.com";
    const job = obj(l.overlay, "Job", "fanda-topics");
    job.spec.template.spec.containers[0].env.find((e: Loose) => e.name === "KAFKA_TOPIC").value =
      "notifications";
    const problems = run("the processor's settings", l);
    expect(problems).toContain("is not an address of the verified domain dev.fanda.example.com");
    expect(problems).toContain("the topic Job creates another topic");
  });
});
