/**
 * Fanda's AWS side, composed from one component per concern (the seed's Terraform modules):
 * Network → Platform (EKS) → Ingest (S3 → Lambda) and Kafka (MSK) → Data (RDS, ElastiCache)
 * → Shared (ECR, SES, secrets) → the processor's IRSA role.
 *
 * `pulumi preview` / `pulumi up` in this folder with a stack (Pulumi.dev.yaml, Pulumi.prod.yaml);
 * offline, the policy tests in infra/*.test.ts run the same program against mocks.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { Data } from "./components/data.ts";
import { Ingest } from "./components/ingest.ts";
import { Kafka } from "./components/kafka.ts";
import { Network } from "./components/network.ts";
import { Platform } from "./components/platform.ts";
import { Shared } from "./components/shared.ts";
import { parseInfraConfig } from "./config.ts";
import { processorPolicy, stableJson } from "./iam.ts";

const TOPIC = "fanda-notifications";
const GROUP = "fanda-processor";

/** Builds every resource of one stack from its configuration. */
export function fanda(raw: unknown, codePath = "../producer/dist") {
  const config = parseInfraConfig(raw);
  const network = new Network("fanda", {
    cidr: config.vpcCidr,
    azCount: config.azCount,
    natPerAz: config.natPerAz,
    region: config.region,
  });
  const platform = new Platform("fanda", {
    vpcId: network.vpc.id,
    privateSubnetIds: network.privateSubnetIds,
    publicSubnetIds: network.publicSubnetIds,
    version: config.eksVersion,
    systemNodeType: config.systemNodeType,
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
  const shared = new Shared("fanda", { sesDomain: config.sesDomain });
  const processorRole = platform.serviceAccountRole("fanda-processor", "fanda", GROUP);
  new aws.iam.RolePolicy("fanda-processor", {
    role: processorRole.id,
    policy: pulumi
      .all([
        kafka.cluster.arn,
        shared.sesIdentity.arn,
        shared.slackSecret.arn,
        data.cacheAuthSecret.arn,
        data.db.masterUserSecrets.apply((s) => s?.[0]?.secretArn ?? ""),
      ])
      .apply(([clusterArn, sesArn, slackArn, redisArn, dbArn]) =>
        stableJson(
          processorPolicy({
            clusterArn,
            topic: TOPIC,
            group: GROUP,
            sesIdentityArn: sesArn,
            secretArns: [slackArn, redisArn, dbArn].filter((a) => a.length > 0),
          }),
        ),
      ),
  });
  return {
    config,
    outputs: {
      bucket: ingest.bucket.bucket,
      producerFunction: ingest.lambda.name,
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
