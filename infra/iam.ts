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
  };
}

/** Connecting to (and describing) the cluster itself, which every client needs. */
function connectStatement(clusterArn: string): Statement {
  return {
    Sid: "ConnectToCluster",
    Effect: "Allow",
    Action: ["kafka-cluster:Connect", "kafka-cluster:DescribeCluster"],
    Resource: [clusterArn],
  };
}

/** The producer Lambda: connect, describe, write to the topic only. */
export function producerPolicy(clusterArn: string, topic: string): PolicyDocument {
  const arns = mskArns(clusterArn, topic, "unused");
  return {
    Version: "2012-10-17",
    Statement: [
      connectStatement(arns.cluster),
      {
        Sid: "WriteNotifications",
        Effect: "Allow",
        Action: ["kafka-cluster:DescribeTopic", "kafka-cluster:WriteData"],
        Resource: [arns.topic],
      },
    ],
  };
}

/** The processor: read the topic in its group, write dead letters, send mail, read its secrets. */
export function processorPolicy(options: {
  clusterArn: string;
  topic: string;
  group: string;
  sesIdentityArn: string;
  secretArns: string[];
}): PolicyDocument {
  const arns = mskArns(options.clusterArn, options.topic, options.group);
  return {
    Version: "2012-10-17",
    Statement: [
      connectStatement(arns.cluster),
      {
        Sid: "ReadNotifications",
        Effect: "Allow",
        Action: ["kafka-cluster:DescribeTopic", "kafka-cluster:ReadData"],
        Resource: [arns.topic],
      },
      {
        Sid: "ConsumerGroup",
        Effect: "Allow",
        Action: ["kafka-cluster:DescribeGroup", "kafka-cluster:AlterGroup"],
        Resource: [arns.group],
      },
      {
        Sid: "WriteDeadLetters",
        Effect: "Allow",
        Action: ["kafka-cluster:DescribeTopic", "kafka-cluster:WriteData"],
        Resource: [arns.dlq],
      },
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
      {
        Sid: "ReadSecrets",
        Effect: "Allow",
        Action: ["secretsmanager:GetSecretValue"],
        Resource: [...options.secretArns].sort(),
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
