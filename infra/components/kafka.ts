/**
 * MSK (Kafka 3.9.x) in private subnets: IAM authentication only (no unauthenticated, no
 * plaintext client access), TLS in transit, encryption at rest, broker logs to CloudWatch.
 * Port 9098 is open only to the security groups named in `clientSecurityGroupIds`.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";

/** Arguments of {@link Kafka}. */
export interface KafkaArgs {
  vpcId: pulumi.Input<string>;
  subnetIds: pulumi.Input<string>[];
  /** The EKS nodes' and the producer Lambda's security groups. */
  clientSecurityGroupIds: pulumi.Input<string>[];
  instanceType: string;
  brokersPerAz: number;
  kafkaVersion: string;
  /** Default for new topics; never above the broker count (config.ts derives it). */
  replicationFactor: number;
  /** Below the replication factor, so a broker restart (MSK patching) never blocks writes. */
  minInsyncReplicas: number;
  /** Partitions of a topic created without an explicit count. */
  partitions: number;
}

/** MSK IAM listener port. */
export const MSK_IAM_PORT = 9098;

/** The MSK cluster. */
export class Kafka extends pulumi.ComponentResource {
  readonly cluster: aws.msk.Cluster;
  readonly securityGroup: aws.ec2.SecurityGroup;

  constructor(name: string, args: KafkaArgs, opts?: pulumi.ComponentResourceOptions) {
    super("fanda:infra:Kafka", name, {}, opts);
    const brokers = args.brokersPerAz * args.subnetIds.length;
    if (args.replicationFactor > brokers || args.minInsyncReplicas >= args.replicationFactor) {
      throw new Error(
        `replication factor ${args.replicationFactor} and min.insync.replicas ${args.minInsyncReplicas} do not fit ${brokers} brokers`,
      );
    }
    const parent = { parent: this };
    this.securityGroup = new aws.ec2.SecurityGroup(
      `${name}-msk`,
      {
        vpcId: args.vpcId,
        description: "MSK: IAM (9098) from the EKS nodes and the producer Lambda only",
        egress: [{ protocol: "-1", fromPort: 0, toPort: 0, cidrBlocks: ["0.0.0.0/0"] }],
      },
      parent,
    );
    args.clientSecurityGroupIds.forEach((sg, i) => {
      new aws.vpc.SecurityGroupIngressRule(
        `${name}-msk-client-${i}`,
        {
          securityGroupId: this.securityGroup.id,
          referencedSecurityGroupId: sg,
          ipProtocol: "tcp",
          fromPort: MSK_IAM_PORT,
          toPort: MSK_IAM_PORT,
          description: "MSK IAM from an allowed client group",
        },
        parent,
      );
    });
    const logs = new aws.cloudwatch.LogGroup(
      `${name}-msk-brokers`,
      { retentionInDays: 30 },
      parent,
    );
    const config = new aws.msk.Configuration(
      `${name}-msk`,
      {
        kafkaVersions: [args.kafkaVersion],
        // Topics are created on purpose (scripts/topics.ts with CreateTopic rights), not by typos.
        serverProperties: [
          "auto.create.topics.enable=false",
          `default.replication.factor=${args.replicationFactor}`,
          `min.insync.replicas=${args.minInsyncReplicas}`,
          `num.partitions=${args.partitions}`,
        ].join("\n"),
      },
      parent,
    );
    this.cluster = new aws.msk.Cluster(
      `${name}-msk`,
      {
        kafkaVersion: args.kafkaVersion,
        numberOfBrokerNodes: brokers,
        brokerNodeGroupInfo: {
          instanceType: args.instanceType,
          clientSubnets: args.subnetIds,
          securityGroups: [this.securityGroup.id],
          storageInfo: { ebsStorageInfo: { volumeSize: 100 } },
        },
        clientAuthentication: { sasl: { iam: true, scram: false }, unauthenticated: false },
        encryptionInfo: { encryptionInTransit: { clientBroker: "TLS", inCluster: true } },
        configurationInfo: { arn: config.arn, revision: config.latestRevision },
        loggingInfo: { brokerLogs: { cloudwatchLogs: { enabled: true, logGroup: logs.name } } },
      },
      parent,
    );
    this.registerOutputs({ bootstrapBrokers: this.cluster.bootstrapBrokersSaslIam });
  }
}
