/**
 * Fanda's AWS side, composed from one component per concern:
 * Network → Platform (EKS) → Ingest (S3 → Lambda) and Kafka (MSK) → Data (RDS, ElastiCache)
 * → Shared (ECR, SES, secrets) → one least-privilege IRSA role per workload and cluster add-on
 * (processor, replay, topic creation, KEDA, External Secrets, Karpenter) and CI's deploy role.
 *
 * The stack's `environment` output is the single source of every value another layer needs
 * (kustomize/overlays/<env>/stack/stack.env is written from it by scripts/env-sync.ts).
 *
 * `pulumi preview` / `pulumi up` in this folder with a stack (Pulumi.dev.yaml, Pulumi.prod.yaml);
 * offline, the policy tests in infra/*.test.ts run the same program against mocks.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { Data, ENDPOINT_PROPERTIES } from "./components/data.ts";
import { Ingest } from "./components/ingest.ts";
import { Kafka, MSK_IAM_PORT } from "./components/kafka.ts";
import { Network } from "./components/network.ts";
import { Platform } from "./components/platform.ts";
import { Shared, SLACK_TOKEN_PROPERTY } from "./components/shared.ts";
import { derive, parseInfraConfig } from "./config.ts";
import {
  deployPolicy,
  externalSecretsPolicy,
  karpenterControllerPolicy,
  kedaPolicy,
  processorPolicy,
  replayPolicy,
  stableJson,
  topicsPolicy,
} from "./iam.ts";

/** The Kafka topic (the DLQ is `<topic>.dlq`) and the processor's consumer group. */
export const TOPIC = "fanda-notifications";
export const GROUP = "fanda-processor";

/** ServiceAccounts of Fanda's own workloads, in the environment's namespace. */
export const WORKLOADS = {
  processor: "fanda-processor",
  replay: "fanda-replay",
  topics: "fanda-topics",
} as const;

/**
 * Cluster add-ons that need AWS identities, where their Helm charts put their ServiceAccounts
 * by default (docs/deployment.md installs them so).
 */
export const ADDONS = {
  keda: { namespace: "keda", serviceAccount: "keda-operator" },
  externalSecrets: { namespace: "external-secrets", serviceAccount: "external-secrets" },
  karpenter: { namespace: "kube-system", serviceAccount: "karpenter" },
} as const;

/** GitHub's OIDC issuer; its identity provider is created once per account (docs/deployment.md). */
export const GITHUB_OIDC_URL = "https://token.actions.githubusercontent.com";

/** Builds every resource of one stack from its configuration. */
export function fanda(raw: unknown, codePath = "../producer/dist") {
  const config = parseInfraConfig(raw);
  const d = derive(config);
  const account = aws.getCallerIdentityOutput({}).accountId;
  const network = new Network("fanda", {
    cidr: config.vpcCidr,
    azCount: config.azCount,
    natPerAz: config.natPerAz,
    region: config.region,
    clusterName: d.clusterName,
  });
  const platform = new Platform("fanda", {
    vpcId: network.vpc.id,
    privateSubnetIds: network.privateSubnetIds,
    publicSubnetIds: network.publicSubnetIds,
    version: config.eksVersion,
    systemNodeType: config.systemNodeType,
    clusterName: d.clusterName,
    adminPrincipalArn: config.adminPrincipalArn,
  });
  const producerSg = new aws.ec2.SecurityGroup("fanda-producer-client", {
    vpcId: network.vpc.id,
    description: "Producer Lambda network interfaces",
    egress: [{ protocol: "-1", fromPort: 0, toPort: 0, cidrBlocks: ["0.0.0.0/0"] }],
  });
  const kafka = new Kafka("fanda", {
    vpcId: network.vpc.id,
    subnetIds: network.privateSubnetIds,
    clientSecurityGroupIds: [platform.cluster.nodeSecurityGroupId, producerSg.id],
    instanceType: config.mskInstanceType,
    brokersPerAz: config.mskBrokersPerAz,
    kafkaVersion: config.mskKafkaVersion,
    replicationFactor: d.replicationFactor,
    minInsyncReplicas: d.minInsyncReplicas,
    partitions: config.partitions,
  });
  const data = new Data("fanda", {
    vpcId: network.vpc.id,
    subnetIds: network.privateSubnetIds,
    clientSecurityGroupId: platform.cluster.nodeSecurityGroupId,
    multiAz: config.multiAz,
    dbInstanceClass: config.dbInstanceClass,
    dbAllocatedStorage: config.dbAllocatedStorage,
    cacheNodeType: config.cacheNodeType,
    cacheReplicas: config.cacheReplicas,
    secretPrefix: d.prefix,
  });
  const alarms = config.alarmEmail ? new aws.sns.Topic("fanda-alarms", {}) : undefined;
  if (alarms && config.alarmEmail) {
    new aws.sns.TopicSubscription("fanda-alarms-email", {
      topic: alarms.arn,
      protocol: "email",
      endpoint: config.alarmEmail,
    });
  }
  const ingest = new Ingest("fanda", {
    vpcId: network.vpc.id,
    subnetIds: network.privateSubnetIds,
    securityGroupId: producerSg.id,
    mskClusterArn: kafka.cluster.arn,
    bootstrapBrokers: kafka.cluster.bootstrapBrokersSaslIam,
    topic: TOPIC,
    region: config.region,
    reservedConcurrency: config.lambdaReservedConcurrency,
    codePath,
    ...(alarms ? { alarmTopicArn: alarms.arn } : {}),
  });
  const shared = new Shared("fanda", { sesDomain: config.sesDomain, prefix: d.prefix });
  const dbSecretArn = data.db.masterUserSecrets.apply((s) => {
    const arn = s?.[0]?.secretArn;
    if (!arn) throw new Error("RDS did not report its managed master user secret");
    return arn;
  });

  /** An IRSA role with one inline policy (named like the role, so tests find both). */
  const irsaRole = (
    name: string,
    namespace: pulumi.Input<string>,
    serviceAccount: string,
    policy: pulumi.Input<string>,
  ) => {
    const role = platform.serviceAccountRole(name, namespace, serviceAccount);
    new aws.iam.RolePolicy(name, { role: role.id, policy });
    return role;
  };
  const clusterArn = kafka.cluster.arn;
  const processorRole = irsaRole(
    "fanda-processor",
    config.namespace,
    WORKLOADS.processor,
    pulumi
      .all([clusterArn, shared.sesIdentity.arn])
      .apply(([arn, sesIdentityArn]) =>
        stableJson(
          processorPolicy({ clusterArn: arn, topic: TOPIC, group: GROUP, sesIdentityArn }),
        ),
      ),
  );
  const replayRole = irsaRole(
    "fanda-replay",
    config.namespace,
    WORKLOADS.replay,
    clusterArn.apply((arn) => stableJson(replayPolicy(arn, TOPIC))),
  );
  const topicsRole = irsaRole(
    "fanda-topics",
    config.namespace,
    WORKLOADS.topics,
    clusterArn.apply((arn) => stableJson(topicsPolicy(arn, TOPIC))),
  );
  const kedaRole = irsaRole(
    "fanda-keda",
    ADDONS.keda.namespace,
    ADDONS.keda.serviceAccount,
    clusterArn.apply((arn) => stableJson(kedaPolicy(arn, TOPIC, GROUP))),
  );
  const externalSecretsRole = irsaRole(
    "fanda-external-secrets",
    ADDONS.externalSecrets.namespace,
    ADDONS.externalSecrets.serviceAccount,
    pulumi
      .all([
        shared.slackSecret.arn,
        data.cacheAuthSecret.arn,
        data.endpointsSecret.arn,
        dbSecretArn,
      ])
      .apply((arns) => stableJson(externalSecretsPolicy(arns))),
  );
  const karpenterRole = irsaRole(
    "fanda-karpenter",
    ADDONS.karpenter.namespace,
    ADDONS.karpenter.serviceAccount,
    pulumi
      .all([account, platform.nodeRole.arn, platform.karpenterQueue.arn])
      .apply(([acct, nodeRoleArn, interruptionQueueArn]) =>
        stableJson(
          karpenterControllerPolicy({
            region: config.region,
            account: acct,
            clusterName: d.clusterName,
            nodeRoleArn,
            interruptionQueueArn,
          }),
        ),
      ),
  );

  // CI pushes images with this role (deploy.yml); trusted only for this repository's
  // GitHub environment of the same name as the stack's.
  const github = aws.iam.getOpenIdConnectProviderOutput({ url: GITHUB_OIDC_URL });
  const deployEnvironment = config.env === "prod" ? "production" : config.env;
  const deployRole = new aws.iam.Role("fanda-deploy", {
    assumeRolePolicy: github.arn.apply((providerArn) =>
      stableJson({
        Version: "2012-10-17",
        Statement: [
          {
            Effect: "Allow",
            Principal: { Federated: providerArn },
            Action: "sts:AssumeRoleWithWebIdentity",
            Condition: {
              StringEquals: {
                "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
                "token.actions.githubusercontent.com:sub": `repo:${config.repository}:environment:${deployEnvironment}`,
              },
            },
          },
        ],
      }),
    ),
  });
  new aws.iam.RolePolicy("fanda-deploy", {
    role: deployRole.id,
    // Promotion copies the image dev runs into prod's repository: prod may pull from any
    // repository named fanda/*/processor in this account.
    policy: pulumi
      .all([shared.repository.arn, account])
      .apply(([repoArn, acct]) =>
        stableJson(
          deployPolicy(
            repoArn,
            config.env === "prod"
              ? [`arn:aws:ecr:${config.region}:${acct}:repository/fanda/*/processor`]
              : [],
          ),
        ),
      ),
  });

  /**
   * Every value another layer needs, as strings: `bun scripts/env-sync.ts <env>` writes this
   * map to kustomize/overlays/<env>/stack/stack.env, which the overlay, Argo CD and Karpenter
   * manifests read through Kustomize replacements. Nothing secret goes here.
   */
  const environment = pulumi
    .all({
      environment: config.env,
      account,
      region: config.region,
      clusterName: d.clusterName,
      vpcCidr: config.vpcCidr,
      namespace: config.namespace,
      repoUrl: d.repoUrl,
      processorServiceAccount: WORKLOADS.processor,
      replayServiceAccount: WORKLOADS.replay,
      topicsServiceAccount: WORKLOADS.topics,
      processorRoleArn: processorRole.arn,
      replayRoleArn: replayRole.arn,
      topicsRoleArn: topicsRole.arn,
      kedaRoleArn: kedaRole.arn,
      kedaServiceAccount: `${ADDONS.keda.namespace}/${ADDONS.keda.serviceAccount}`,
      externalSecretsRoleArn: externalSecretsRole.arn,
      externalSecretsServiceAccount: `${ADDONS.externalSecrets.namespace}/${ADDONS.externalSecrets.serviceAccount}`,
      karpenterRoleArn: karpenterRole.arn,
      karpenterServiceAccount: `${ADDONS.karpenter.namespace}/${ADDONS.karpenter.serviceAccount}`,
      karpenterNodeRole: platform.nodeRole.name,
      karpenterInterruptionQueue: platform.karpenterQueue.name,
      deployRoleArn: deployRole.arn,
      kafkaBrokers: kafka.cluster.bootstrapBrokersSaslIam,
      kafkaPort: String(MSK_IAM_PORT),
      mskClusterArn: clusterArn,
      topic: TOPIC,
      consumerGroup: GROUP,
      partitions: String(config.partitions),
      replicationFactor: String(d.replicationFactor),
      ecrRepository: shared.repository.repositoryUrl,
      slackSecret: shared.slackSecret.name,
      slackSecretProperty: SLACK_TOKEN_PROPERTY,
      databaseSecret: dbSecretArn,
      redisAuthSecret: data.cacheAuthSecret.name,
      endpointsSecret: data.endpointsSecret.name,
      endpointsProperties: ENDPOINT_PROPERTIES.join(","),
      sesFrom: d.sesFrom,
      slackChannel: config.slackChannel,
      emailTo: config.emailTo,
      bucket: ingest.bucket.bucket,
      producerFunction: ingest.lambda.name,
      producerFailureQueueUrl: ingest.failures.url,
    })
    .apply((values) => {
      const out: Record<string, string> = {};
      for (const [k, v] of Object.entries(values)) {
        if (typeof v !== "string" || v.length === 0)
          throw new Error(`stack environment: ${k} has no value`);
        out[k] = v;
      }
      return out;
    });

  return {
    config,
    derived: d,
    outputs: {
      environment,
      bucket: ingest.bucket.bucket,
      producerFunction: ingest.lambda.name,
      producerFailureQueueUrl: ingest.failures.url,
      mskBootstrapBrokers: kafka.cluster.bootstrapBrokersSaslIam,
      mskClusterArn: kafka.cluster.arn,
      dbEndpoint: data.db.endpoint,
      redisEndpoint: data.cache.primaryEndpointAddress,
      ecrRepository: shared.repository.repositoryUrl,
      processorRoleArn: processorRole.arn,
      kubeconfig: pulumi.secret(platform.cluster.kubeconfigJson),
      karpenterInterruptionQueue: platform.karpenterQueue.name,
    },
  };
}
