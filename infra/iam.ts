/**
 * Least-privilege IAM policy documents, built from specific ARNs (never `*` for Kafka). Pure
 * functions, so the tests can read them as policy. Keys are emitted in a stable order.
 */

/** An IAM policy statement. */
export interface Statement {
  Sid: string;
  Effect: "Allow";
  Action: string[];
  Resource: string[];
  Condition?: Record<string, Record<string, string | string[]>>;
}

/** An IAM policy document. */
export interface PolicyDocument {
  Version: "2012-10-17";
  Statement: Statement[];
}

/** The ARNs MSK IAM authorization works on, derived from the cluster ARN. */
export function mskArns(clusterArn: string, topic: string, group: string) {
  // arn:aws:kafka:<region>:<account>:cluster/<name>/<uuid> → topic/<name>/<uuid>/<topic>
  const [prefix, rest] = clusterArn.split(":cluster/");
  if (!prefix || !rest) throw new Error(`not an MSK cluster ARN: ${clusterArn}`);
  return {
    cluster: clusterArn,
    topic: `${prefix}:topic/${rest}/${topic}`,
    dlq: `${prefix}:topic/${rest}/${topic}.dlq`,
    group: `${prefix}:group/${rest}/${group}`,
    /** The replay's throwaway groups (`<group prefix>-<uuid>`), see processor/src/replay.ts. */
    groupsLike: (groupPrefix: string) => `${prefix}:group/${rest}/${groupPrefix}*`,
  };
}

/** The consumer-group name prefix the replay uses (processor/src/replay.ts). */
export const REPLAY_GROUP_PREFIX = "fanda-replay-";

// Actions and the resources they apply to follow AWS's table for MSK IAM access control
// (https://docs.aws.amazon.com/msk/latest/developerguide/kafka-actions.html): Connect and
// DescribeCluster and WriteDataIdempotently on the cluster; CreateTopic, DescribeTopic,
// ReadData, WriteData on a topic; DescribeGroup, AlterGroup on a group. An idempotent producer
// (kafkajs `idempotent: true`) calls InitProducerId, which MSK authorizes as
// WriteDataIdempotently on the cluster. test/agreement checks these against what the code calls.

const allow = (Sid: string, Action: string[], Resource: string[]): Statement => ({
  Sid,
  Effect: "Allow",
  Action,
  Resource,
});
/** Consuming a topic (ReadData needs DescribeTopic, per AWS's table). */
const readTopic = (sid: string, arn: string) =>
  allow(sid, ["kafka-cluster:DescribeTopic", "kafka-cluster:ReadData"], [arn]);
/** Producing to a topic (WriteData needs DescribeTopic). */
const writeTopic = (sid: string, arn: string) =>
  allow(sid, ["kafka-cluster:DescribeTopic", "kafka-cluster:WriteData"], [arn]);
/** Being a member of a consumer group and committing in it (AlterGroup needs DescribeGroup). */
const memberOf = (sid: string, arn: string) =>
  allow(sid, ["kafka-cluster:DescribeGroup", "kafka-cluster:AlterGroup"], [arn]);

/**
 * Connecting to the cluster, which every client needs (and idempotent writes, for producers).
 * No client calls DescribeCluster: kafkajs's describeCluster() is a Metadata request.
 */
function connectStatement(clusterArn: string, idempotentWrites = false): Statement {
  return {
    Sid: "ConnectToCluster",
    Effect: "Allow",
    Action: [
      "kafka-cluster:Connect",
      ...(idempotentWrites ? ["kafka-cluster:WriteDataIdempotently"] : []),
    ],
    Resource: [clusterArn],
  };
}

/** The producer Lambda: connect, describe, write to the topic (idempotently) only. */
export function producerPolicy(clusterArn: string, topic: string): PolicyDocument {
  const arns = mskArns(clusterArn, topic, "unused");
  return {
    Version: "2012-10-17",
    Statement: [connectStatement(arns.cluster, true), writeTopic("WriteNotifications", arns.topic)],
  };
}

/** The processor: read the topic in its group, write dead letters, send mail. */
export function processorPolicy(options: {
  clusterArn: string;
  topic: string;
  group: string;
  sesIdentityArn: string;
}): PolicyDocument {
  const arns = mskArns(options.clusterArn, options.topic, options.group);
  return {
    Version: "2012-10-17",
    Statement: [
      connectStatement(arns.cluster, true),
      readTopic("ReadNotifications", arns.topic),
      memberOf("ConsumerGroup", arns.group),
      writeTopic("WriteDeadLetters", arns.dlq),
      {
        Sid: "SendEmail",
        Effect: "Allow",
        Action: ["ses:SendEmail"],
        Resource: [options.sesIdentityArn],
      },
      {
        // GetAccount (MaxSendRate at start-up) has no resource-level permission.
        Sid: "ReadSendQuota",
        Effect: "Allow",
        Action: ["ses:GetAccount"],
        Resource: ["*"],
      },
    ],
  };
}

/** Replay (a Job): read the DLQ in throwaway groups, write the main topic idempotently. */
export function replayPolicy(clusterArn: string, topic: string): PolicyDocument {
  const arns = mskArns(clusterArn, topic, "unused");
  return {
    Version: "2012-10-17",
    Statement: [
      connectStatement(arns.cluster, true),
      readTopic("ReadDeadLetters", arns.dlq),
      memberOf("ReplayGroups", arns.groupsLike(REPLAY_GROUP_PREFIX)),
      writeTopic("WriteNotifications", arns.topic),
    ],
  };
}

/** Topic creation (the Argo CD PreSync Job): create and describe the two topics only. */
export function topicsPolicy(clusterArn: string, topic: string): PolicyDocument {
  const arns = mskArns(clusterArn, topic, "unused");
  return {
    Version: "2012-10-17",
    Statement: [
      connectStatement(arns.cluster),
      {
        Sid: "CreateTopics",
        Effect: "Allow",
        // CreateTopics answers with the new topics' configuration, which Kafka authorizes as
        // DESCRIBE_CONFIGS on the topic (recorded in test/agreement/kafka-access.json).
        Action: [
          "kafka-cluster:CreateTopic",
          "kafka-cluster:DescribeTopic",
          "kafka-cluster:DescribeTopicDynamicConfiguration",
        ],
        Resource: [arns.topic, arns.dlq],
      },
    ],
  };
}

/** KEDA's operator reads the processor group's lag: describe the topic and the group. */
export function kedaPolicy(clusterArn: string, topic: string, group: string): PolicyDocument {
  const arns = mskArns(clusterArn, topic, group);
  return {
    Version: "2012-10-17",
    Statement: [
      connectStatement(arns.cluster),
      {
        Sid: "DescribeLag",
        Effect: "Allow",
        Action: ["kafka-cluster:DescribeTopic"],
        Resource: [arns.topic],
      },
      {
        Sid: "DescribeGroup",
        Effect: "Allow",
        Action: ["kafka-cluster:DescribeGroup"],
        Resource: [arns.group],
      },
    ],
  };
}

/** External Secrets: read exactly the secrets the ExternalSecret names. */
export function externalSecretsPolicy(secretArns: string[]): PolicyDocument {
  return {
    Version: "2012-10-17",
    Statement: [
      {
        Sid: "ReadFandaSecrets",
        Effect: "Allow",
        Action: ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"],
        Resource: [...secretArns].sort(),
      },
    ],
  };
}

/** CI's deploy role for one environment: push images to that environment's repository. */
export function deployPolicy(repositoryArn: string, pullFromArns: string[] = []): PolicyDocument {
  return {
    Version: "2012-10-17",
    Statement: [
      {
        // GetAuthorizationToken has no resource-level permission.
        Sid: "RegistryLogin",
        Effect: "Allow",
        Action: ["ecr:GetAuthorizationToken"],
        Resource: ["*"],
      },
      {
        Sid: "PushImages",
        Effect: "Allow",
        Action: [
          "ecr:BatchCheckLayerAvailability",
          "ecr:BatchGetImage",
          "ecr:CompleteLayerUpload",
          "ecr:DescribeImageScanFindings",
          "ecr:DescribeImages",
          "ecr:GetDownloadUrlForLayer",
          "ecr:InitiateLayerUpload",
          "ecr:PutImage",
          "ecr:UploadLayerPart",
        ],
        Resource: [repositoryArn],
      },
      ...(pullFromArns.length > 0
        ? [
            {
              Sid: "PullPromotedImages",
              Effect: "Allow" as const,
              Action: [
                "ecr:BatchCheckLayerAvailability",
                "ecr:BatchGetImage",
                "ecr:GetDownloadUrlForLayer",
              ],
              Resource: [...pullFromArns].sort(),
            },
          ]
        : []),
    ],
  };
}

/**
 * Karpenter v1's controller, scoped to one cluster: launch and tag instances only with the
 * cluster's ownership tag and a NodePool tag, pass only the node role, read the interruption
 * queue. Follows the controller policy Karpenter's getting-started guide publishes.
 */
export function karpenterControllerPolicy(options: {
  region: string;
  account: string;
  clusterName: string;
  nodeRoleArn: string;
  interruptionQueueArn: string;
}): PolicyDocument {
  const { region, account, clusterName } = options;
  const ec2 = (type: string) => `arn:aws:ec2:${region}:*:${type}/*`;
  const owned = { [`aws:RequestTag/kubernetes.io/cluster/${clusterName}`]: "owned" };
  const ownedResource = { [`aws:ResourceTag/kubernetes.io/cluster/${clusterName}`]: "owned" };
  const created = [
    "fleet",
    "instance",
    "volume",
    "network-interface",
    "launch-template",
    "spot-instances-request",
  ].map(ec2);
  const profile = `arn:aws:iam::${account}:instance-profile/*`;
  return {
    Version: "2012-10-17",
    Statement: [
      {
        Sid: "LaunchFromSharedResources",
        Effect: "Allow",
        Action: ["ec2:CreateFleet", "ec2:RunInstances"],
        Resource: [
          `arn:aws:ec2:${region}::image/*`,
          `arn:aws:ec2:${region}::snapshot/*`,
          ec2("security-group"),
          ec2("subnet"),
        ],
      },
      {
        Sid: "LaunchFromOwnedTemplates",
        Effect: "Allow",
        Action: ["ec2:CreateFleet", "ec2:RunInstances"],
        Resource: [ec2("launch-template")],
        Condition: {
          StringEquals: ownedResource,
          StringLike: { "aws:ResourceTag/karpenter.sh/nodepool": "*" },
        },
      },
      {
        Sid: "CreateOwnedResources",
        Effect: "Allow",
        Action: ["ec2:CreateFleet", "ec2:CreateLaunchTemplate", "ec2:RunInstances"],
        Resource: created,
        Condition: {
          StringEquals: { ...owned, "aws:RequestTag/eks:eks-cluster-name": clusterName },
          StringLike: { "aws:RequestTag/karpenter.sh/nodepool": "*" },
        },
      },
      {
        Sid: "TagOnCreate",
        Effect: "Allow",
        Action: ["ec2:CreateTags"],
        Resource: created,
        Condition: {
          StringEquals: {
            ...owned,
            "aws:RequestTag/eks:eks-cluster-name": clusterName,
            "ec2:CreateAction": ["CreateFleet", "CreateLaunchTemplate", "RunInstances"],
          },
          StringLike: { "aws:RequestTag/karpenter.sh/nodepool": "*" },
        },
      },
      {
        Sid: "TagOwnedInstances",
        Effect: "Allow",
        Action: ["ec2:CreateTags"],
        Resource: [ec2("instance")],
        Condition: {
          StringEquals: ownedResource,
          StringLike: { "aws:ResourceTag/karpenter.sh/nodepool": "*" },
          "ForAllValues:StringEquals": {
            "aws:TagKeys": ["Name", "eks:eks-cluster-name", "karpenter.sh/nodeclaim"],
          },
        },
      },
      {
        Sid: "DeleteOwned",
        Effect: "Allow",
        Action: ["ec2:DeleteLaunchTemplate", "ec2:TerminateInstances"],
        Resource: [ec2("instance"), ec2("launch-template")],
        Condition: {
          StringEquals: ownedResource,
          StringLike: { "aws:ResourceTag/karpenter.sh/nodepool": "*" },
        },
      },
      {
        // Describe calls have no resource-level permissions; limited to the region.
        Sid: "RegionalReads",
        Effect: "Allow",
        Action: [
          "ec2:DescribeAvailabilityZones",
          "ec2:DescribeImages",
          "ec2:DescribeInstanceTypeOfferings",
          "ec2:DescribeInstanceTypes",
          "ec2:DescribeInstances",
          "ec2:DescribeLaunchTemplates",
          "ec2:DescribeSecurityGroups",
          "ec2:DescribeSpotPriceHistory",
          "ec2:DescribeSubnets",
        ],
        Resource: ["*"],
        Condition: { StringEquals: { "aws:RequestedRegion": region } },
      },
      {
        Sid: "AmiParameters",
        Effect: "Allow",
        Action: ["ssm:GetParameter"],
        Resource: [`arn:aws:ssm:${region}::parameter/aws/service/*`],
      },
      {
        // The Price List API has no resource-level permissions.
        Sid: "Pricing",
        Effect: "Allow",
        Action: ["pricing:GetProducts"],
        Resource: ["*"],
      },
      {
        Sid: "PassNodeRole",
        Effect: "Allow",
        Action: ["iam:PassRole"],
        Resource: [options.nodeRoleArn],
        Condition: { StringEquals: { "iam:PassedToService": "ec2.amazonaws.com" } },
      },
      {
        Sid: "CreateInstanceProfiles",
        Effect: "Allow",
        Action: ["iam:CreateInstanceProfile", "iam:TagInstanceProfile"],
        Resource: [profile],
        Condition: {
          StringEquals: { ...owned, "aws:RequestTag/topology.kubernetes.io/region": region },
          StringLike: { "aws:RequestTag/karpenter.k8s.aws/ec2nodeclass": "*" },
        },
      },
      {
        Sid: "ManageOwnedInstanceProfiles",
        Effect: "Allow",
        Action: [
          "iam:AddRoleToInstanceProfile",
          "iam:DeleteInstanceProfile",
          "iam:RemoveRoleFromInstanceProfile",
          "iam:TagInstanceProfile",
        ],
        Resource: [profile],
        Condition: {
          StringEquals: {
            ...ownedResource,
            "aws:ResourceTag/topology.kubernetes.io/region": region,
          },
          StringLike: { "aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass": "*" },
        },
      },
      {
        Sid: "ReadInstanceProfiles",
        Effect: "Allow",
        Action: ["iam:GetInstanceProfile"],
        Resource: [profile],
      },
      {
        // Garbage collection of instance profiles lists them; listing has no resource scope.
        Sid: "ListInstanceProfiles",
        Effect: "Allow",
        Action: ["iam:ListInstanceProfiles"],
        Resource: ["*"],
      },
      {
        Sid: "DiscoverApiServer",
        Effect: "Allow",
        Action: ["eks:DescribeCluster"],
        Resource: [`arn:aws:eks:${region}:${account}:cluster/${clusterName}`],
      },
      {
        Sid: "InterruptionQueue",
        Effect: "Allow",
        Action: ["sqs:DeleteMessage", "sqs:GetQueueUrl", "sqs:ReceiveMessage"],
        Resource: [options.interruptionQueueArn],
      },
    ],
  };
}

/** JSON with object keys sorted, so the same policy always serialises the same way. */
export function stableJson(value: unknown): string {
  const sort = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(sort);
    if (v && typeof v === "object") {
      return Object.fromEntries(
        Object.entries(v)
          .sort(([a], [b]) => a.localeCompare(b))
          .map(([k, x]) => [k, sort(x)]),
      );
    }
    return v;
  };
  return JSON.stringify(sort(value));
}
