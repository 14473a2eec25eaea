/**
 * The infrastructure's security policy, as tests. Each stack (dev, prod) is synthesized
 * offline against Pulumi mocks (infra/synth.ts, in its own process) and every resource it
 * would create is checked. `pulumi preview` needs AWS credentials; these tests are the gate.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { subnetCidrs } from "./components/network.ts";
import { irsaTrust } from "./components/platform.ts";
import { derive, parseInfraConfig } from "./config.ts";
import {
  externalSecretsPolicy,
  mskArns,
  type PolicyDocument,
  processorPolicy,
  producerPolicy,
  stableJson,
} from "./iam.ts";
import { synthesize } from "./synthesize.ts";

interface Res {
  type: string;
  name: string;
  // biome-ignore lint/suspicious/noExplicitAny: resource inputs of many shapes.
  inputs: Record<string, any>;
}

const stacks: Record<string, Res[]> = {};

const synth = async (stack: string): Promise<Res[]> => (await synthesize(stack)).resources;

beforeAll(async () => {
  const [dev, prod] = await Promise.all([synth("dev"), synth("prod")]);
  stacks.dev = dev;
  stacks.prod = prod;
}, 120_000);

const of = (stack: string, type: string) => (stacks[stack] ?? []).filter((r) => r.type === type);
const one = (stack: string, type: string) => {
  const found = of(stack, type);
  if (found.length !== 1)
    throw new Error(`expected one ${type} in ${stack}, found ${found.length}`);
  return found[0] as Res;
};
const policies = (stack: string): PolicyDocument[] =>
  of(stack, "aws:iam/rolePolicy:RolePolicy").map(
    (r) => JSON.parse(r.inputs.policy) as PolicyDocument,
  );

describe.each(["dev", "prod"])("%s stack", (stack) => {
  test("has one component per concern", () => {
    for (const c of ["Network", "Platform", "Kafka", "Data", "Ingest", "Shared"]) {
      expect(of(stack, `fanda:infra:${c}`)).toHaveLength(1);
    }
  });

  test("MSK: IAM only, no unauthenticated or plaintext access, TLS, Kafka 3.9, logs", () => {
    const msk = one(stack, "aws:msk/cluster:Cluster").inputs;
    expect(msk.clientAuthentication).toEqual({
      sasl: { iam: true, scram: false },
      unauthenticated: false,
    });
    expect(msk.encryptionInfo.encryptionInTransit).toEqual({
      clientBroker: "TLS",
      inCluster: true,
    });
    expect(msk.kafkaVersion).toStartWith("3.9.");
    expect(msk.loggingInfo.brokerLogs.cloudwatchLogs.enabled).toBe(true);
    expect(one(stack, "aws:msk/configuration:Configuration").inputs.serverProperties).toContain(
      "auto.create.topics.enable=false",
    );
  });

  test("MSK: only 9098, only from the EKS nodes' and the producer's security groups", () => {
    const mskSg = of(stack, "aws:ec2/securityGroup:SecurityGroup").find(
      (s) => s.name === "fanda-msk",
    );
    expect(mskSg?.inputs.ingress ?? []).toEqual([]);
    const rules = of(stack, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule");
    expect(rules).toHaveLength(2);
    for (const r of rules) {
      expect(r.inputs).toMatchObject({ fromPort: 9098, toPort: 9098, ipProtocol: "tcp" });
      expect(r.inputs.cidrIpv4).toBeUndefined();
      expect(r.inputs.referencedSecurityGroupId).toBeTruthy();
    }
    expect(rules.map((r) => r.inputs.referencedSecurityGroupId)).toContain("sg-0eksnodes");
  });

  test("IAM: no kafka-cluster action on `*`; topic, group and DLQ ARNs are specific", () => {
    for (const p of policies(stack)) {
      for (const s of p.Statement) {
        if (s.Action.some((a) => a.startsWith("kafka-cluster:"))) {
          expect(s.Resource).not.toContain("*");
          for (const r of s.Resource) expect(r).toMatch(/^arn:aws:kafka:/);
        }
      }
    }
    const processor = policies(stack).find((p) =>
      p.Statement.some((s) => s.Sid === "ConsumerGroup"),
    );
    const byId = Object.fromEntries((processor?.Statement ?? []).map((s) => [s.Sid, s]));
    expect(byId.ReadNotifications?.Resource[0]).toMatch(
      /:topic\/fanda-msk\/[^/]+\/fanda-notifications$/,
    );
    expect(byId.ConsumerGroup?.Resource[0]).toMatch(/:group\/fanda-msk\/[^/]+\/fanda-processor$/);
    expect(byId.WriteDeadLetters?.Resource[0]).toMatch(/\/fanda-notifications\.dlq$/);
    expect(byId.ReadNotifications?.Action).not.toContain("kafka-cluster:WriteData");
    const producer = policies(stack).find((p) =>
      p.Statement.some((s) => s.Sid === "WriteNotifications"),
    );
    expect(producer?.Statement.flatMap((s) => s.Action)).not.toContain("kafka-cluster:ReadData");
  });

  test("IRSA: each workload and add-on role trusts exactly one ServiceAccount", () => {
    const namespace = stack === "dev" ? "fanda-dev" : "fanda";
    const expected: Record<string, string> = {
      "fanda-processor": `${namespace}:fanda-processor`,
      "fanda-replay": `${namespace}:fanda-replay`,
      "fanda-topics": `${namespace}:fanda-topics`,
      "fanda-keda": "keda:keda-operator",
      "fanda-external-secrets": "external-secrets:external-secrets",
      "fanda-karpenter": "kube-system:karpenter",
    };
    for (const [name, subject] of Object.entries(expected)) {
      const role = of(stack, "aws:iam/role:Role").find((r) => r.name === name);
      const trust = JSON.parse(role?.inputs.assumeRolePolicy ?? "{}");
      expect(trust.Statement).toHaveLength(1);
      const conditions = Object.values(trust.Statement[0].Condition.StringEquals);
      expect(conditions).toContain(`system:serviceaccount:${subject}`);
      expect(conditions).toContain("sts.amazonaws.com");
    }
  });

  test("CI's deploy role is trusted only by this repository's environment of the same stage", () => {
    const role = of(stack, "aws:iam/role:Role").find((r) => r.name === "fanda-deploy");
    const trust = JSON.parse(role?.inputs.assumeRolePolicy ?? "{}");
    expect(trust.Statement[0].Condition.StringEquals).toEqual({
      "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
      "token.actions.githubusercontent.com:sub": `repo:fanda-notifications/fanda:environment:${stack === "dev" ? "dev" : "production"}`,
    });
  });

  test("account-wide names carry the environment, so dev and prod can share an account", () => {
    for (const s of of(stack, "aws:secretsmanager/secret:Secret"))
      expect(s.inputs.name).toStartWith(`fanda/${stack}/`);
    expect(one(stack, "aws:ecr/repository:Repository").inputs.name).toBe(
      `fanda/${stack}/processor`,
    );
    expect(one(stack, "eks:index:Cluster").inputs.name).toBe(`fanda-${stack}`);
  });

  test("S3: versioned, encrypted, public access blocked, ObjectCreated to the Lambda", () => {
    expect(
      one(stack, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").inputs,
    ).toMatchObject({
      blockPublicAcls: true,
      blockPublicPolicy: true,
      ignorePublicAcls: true,
      restrictPublicBuckets: true,
    });
    expect(
      one(stack, "aws:s3/bucketVersioning:BucketVersioning").inputs.versioningConfiguration.status,
    ).toBe("Enabled");
    expect(
      one(
        stack,
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
      ).inputs.rules[0].applyServerSideEncryptionByDefault.sseAlgorithm,
    ).toBe("aws:kms");
    expect(
      one(stack, "aws:s3/bucketNotification:BucketNotification").inputs.lambdaFunctions[0].events,
    ).toEqual(["s3:ObjectCreated:*"]);
  });

  test("Lambda: Node 22, in the VPC, reserved concurrency, failures kept in SQS, errors alarmed", () => {
    const fn = one(stack, "aws:lambda/function:Function").inputs;
    expect(fn.runtime).toBe("nodejs22.x");
    expect(fn.handler).toBe("lambda.handler");
    expect(fn.vpcConfig.subnetIds.length).toBeGreaterThanOrEqual(2);
    expect(fn.reservedConcurrentExecutions).toBeGreaterThan(0);
    expect(fn.environment.variables.KAFKA_AUTH).toBe("iam");
    expect(
      one(stack, "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig").inputs
        .destinationConfig.onFailure.destination,
    ).toBeTruthy();
    const alarms = of(stack, "aws:cloudwatch/metricAlarm:MetricAlarm").map((a) => a.inputs);
    expect(alarms.map((a) => `${a.namespace} ${a.metricName}`).sort()).toEqual([
      "AWS/Lambda Errors",
      "AWS/SQS ApproximateNumberOfMessagesVisible",
    ]);
    expect(alarms.find((a) => a.namespace === "AWS/SQS")?.dimensions.QueueName).toBe(
      "fanda-producer-failures",
    );
  });

  test("databases: private, encrypted, reachable from the EKS nodes only", () => {
    const db = one(stack, "aws:rds/instance:Instance").inputs;
    expect(db).toMatchObject({
      publiclyAccessible: false,
      storageEncrypted: true,
      manageMasterUserPassword: true,
    });
    expect(db.engineVersion).toStartWith("8.");
    const cache = one(stack, "aws:elasticache/replicationGroup:ReplicationGroup").inputs;
    expect(cache).toMatchObject({ transitEncryptionEnabled: true, atRestEncryptionEnabled: true });
    expect(cache.authToken).toBeTruthy();
    for (const name of ["fanda-mysql", "fanda-redis"]) {
      const sg = of(stack, "aws:ec2/securityGroup:SecurityGroup").find((s) => s.name === name);
      expect(sg?.inputs.ingress).toHaveLength(1);
      expect(sg?.inputs.ingress[0].securityGroups).toEqual(["sg-0eksnodes"]);
      expect(sg?.inputs.ingress[0].cidrBlocks).toBeUndefined();
    }
  });

  test("no security group admits the internet on Kafka, MySQL or Redis ports", () => {
    for (const sg of of(stack, "aws:ec2/securityGroup:SecurityGroup")) {
      for (const rule of sg.inputs.ingress ?? []) {
        if ([9098, 3306, 6379].includes(rule.fromPort))
          expect(rule.cidrBlocks ?? []).not.toContain("0.0.0.0/0");
      }
    }
  });

  test("ECR: immutable tags, scan on push, lifecycle; SES identity with DKIM", () => {
    expect(one(stack, "aws:ecr/repository:Repository").inputs).toMatchObject({
      imageTagMutability: "IMMUTABLE",
      imageScanningConfiguration: { scanOnPush: true },
    });
    expect(of(stack, "aws:ecr/lifecyclePolicy:LifecyclePolicy")).toHaveLength(1);
    expect(
      one(stack, "aws:sesv2/emailIdentity:EmailIdentity").inputs.dkimSigningAttributes,
    ).toBeTruthy();
  });

  test("VPC endpoints for S3 and Secrets Manager; private subnets tagged for Karpenter", () => {
    const endpoints = of(stack, "aws:ec2/vpcEndpoint:VpcEndpoint").map((e) => e.inputs.serviceName);
    expect(endpoints.some((s: string) => s.endsWith(".s3"))).toBe(true);
    expect(endpoints.some((s: string) => s.endsWith(".secretsmanager"))).toBe(true);
    const privates = of(stack, "aws:ec2/subnet:Subnet").filter((s) => s.name.includes("private"));
    for (const s of privates)
      expect(s.inputs.tags["karpenter.sh/discovery"]).toBe(`fanda-${stack}`);
  });

  test("EKS: API authentication mode with an admin access entry, OIDC for IRSA, a system node group", () => {
    const cluster = one(stack, "eks:index:Cluster").inputs;
    expect(cluster).toMatchObject({
      authenticationMode: "API",
      createOidcProvider: true,
      skipDefaultSecurityGroups: true,
      vpcCniOptions: { enableNetworkPolicy: true },
    });
    expect(cluster.accessEntries.admin).toEqual({
      principalArn: "arn:aws:iam::123456789012:role/fanda-admin",
      accessPolicies: {
        admin: {
          policyArn: "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy",
          accessScope: { type: "cluster" },
        },
      },
    });
    expect(of(stack, "eks:index:ManagedNodeGroup")).toHaveLength(1);
  });

  test("Karpenter: its nodes share the cluster's security group (tagged for discovery), interruptions reach its queue", () => {
    expect(one(stack, "aws:ec2/tag:Tag").inputs).toEqual({
      resourceId: "sg-0eksnodes",
      key: "karpenter.sh/discovery",
      value: `fanda-${stack}`,
    });
    const policy = JSON.parse(one(stack, "aws:sqs/queuePolicy:QueuePolicy").inputs.policy);
    expect(policy.Statement[0]).toMatchObject({
      Principal: { Service: ["events.amazonaws.com", "sqs.amazonaws.com"] },
      Action: "sqs:SendMessage",
    });
    expect(of(stack, "aws:cloudwatch/eventTarget:EventTarget")).toHaveLength(4);
  });
});

describe("environments differ where they must", () => {
  test("prod: Multi-AZ data, a NAT per AZ across 3 AZs, deletion protection", () => {
    expect(one("prod", "aws:rds/instance:Instance").inputs).toMatchObject({
      multiAz: true,
      deletionProtection: true,
    });
    expect(one("prod", "aws:elasticache/replicationGroup:ReplicationGroup").inputs).toMatchObject({
      multiAzEnabled: true,
      automaticFailoverEnabled: true,
    });
    expect(of("prod", "aws:ec2/natGateway:NatGateway")).toHaveLength(3);
    expect(of("prod", "aws:ec2/subnet:Subnet")).toHaveLength(6);
    expect(one("prod", "aws:msk/cluster:Cluster").inputs.numberOfBrokerNodes).toBe(3);
  });

  test("dev: one NAT, single-AZ data", () => {
    expect(one("dev", "aws:rds/instance:Instance").inputs.multiAz).toBe(false);
    expect(of("dev", "aws:ec2/natGateway:NatGateway")).toHaveLength(1);
  });
});

describe("configuration", () => {
  const valid = {
    env: "prod",
    region: "ap-northeast-2",
    vpcCidr: "10.20.0.0/16",
    azCount: 3,
    natPerAz: true,
    multiAz: true,
    mskInstanceType: "kafka.m7g.large",
    mskBrokersPerAz: 1,
    mskKafkaVersion: "3.9.x",
    eksVersion: "1.33",
    systemNodeType: "m7i.large",
    dbInstanceClass: "db.r7g.large",
    dbAllocatedStorage: 100,
    cacheNodeType: "cache.r7g.large",
    cacheReplicas: 2,
    lambdaReservedConcurrency: 200,
    sesDomain: "fanda.example.com",
    adminPrincipalArn: "arn:aws:iam::123456789012:role/platform-admin",
    namespace: "fanda",
    repository: "fanda-notifications/fanda",
    partitions: 6,
    slackChannel: "#fanda-uploads",
    emailTo: "ops@example.com, oncall@example.com",
  };

  test("accepts a valid prod stack", () => {
    expect(parseInfraConfig(valid).env).toBe("prod");
  });

  test("derives replication from the broker count: RF at most the brokers, min ISR below RF", () => {
    const two = derive(parseInfraConfig({ ...valid, azCount: 2 }));
    expect(two).toMatchObject({ brokers: 2, replicationFactor: 2, minInsyncReplicas: 1 });
    const six = derive(parseInfraConfig({ ...valid, mskBrokersPerAz: 2 }));
    expect(six).toMatchObject({ brokers: 6, replicationFactor: 3, minInsyncReplicas: 2 });
    expect(derive(parseInfraConfig(valid))).toMatchObject({
      clusterName: "fanda-prod",
      prefix: "fanda/prod",
      sesFrom: "fanda@fanda.example.com",
      repoUrl: "https://github.com/fanda-notifications/fanda.git",
    });
  });

  test.each([
    [{ multiAz: false }, "fanda:multiAz: prod must be Multi-AZ"],
    [{ natPerAz: false }, "fanda:natPerAz: prod needs one NAT gateway per AZ"],
    [{ azCount: 1 }, "fanda:azCount: MSK and RDS need at least 2 AZs"],
    [{ vpcCidr: "10.0.0.0/8" }, "fanda:vpcCidr"],
    [{ mskKafkaVersion: "4.0.0" }, "fanda:mskKafkaVersion: expected Kafka 3.9.x"],
    [{ dbInstanceClass: "m5.large" }, "fanda:dbInstanceClass"],
    [{ cacheReplicas: 0 }, "fanda:cacheReplicas: Multi-AZ Redis needs at least one replica"],
    [{ env: "staging" }, "fanda:env: expected dev or prod"],
    [{ adminPrincipalArn: "platform-admin" }, "fanda:adminPrincipalArn: expected the ARN"],
    [{ namespace: "Fanda_Prod" }, "fanda:namespace: expected a Kubernetes namespace name"],
    [{ repository: "https://github.com/x/y" }, "fanda:repository: expected a GitHub repository"],
    [{ partitions: 0 }, "fanda:partitions"],
    [{ slackChannel: "fanda uploads" }, "fanda:slackChannel"],
    [{ emailTo: "ops@example.com, nobody" }, "fanda:emailTo: expected comma-separated email"],
  ])("refuses %p", (over, message) => {
    expect(() => parseInfraConfig({ ...valid, ...over })).toThrow(message);
  });
});

describe("building blocks", () => {
  test("MSK IAM ARNs are derived from the cluster ARN", () => {
    const arns = mskArns("arn:aws:kafka:eu-west-1:123456789012:cluster/fanda/abc-1", "t", "g");
    expect(arns).toMatchObject({
      cluster: "arn:aws:kafka:eu-west-1:123456789012:cluster/fanda/abc-1",
      topic: "arn:aws:kafka:eu-west-1:123456789012:topic/fanda/abc-1/t",
      dlq: "arn:aws:kafka:eu-west-1:123456789012:topic/fanda/abc-1/t.dlq",
      group: "arn:aws:kafka:eu-west-1:123456789012:group/fanda/abc-1/g",
    });
    expect(arns.groupsLike("fanda-replay-")).toBe(
      "arn:aws:kafka:eu-west-1:123456789012:group/fanda/abc-1/fanda-replay-*",
    );
    expect(() => mskArns("arn:aws:s3:::bucket", "t", "g")).toThrow(/not an MSK cluster ARN/);
  });

  test("the producer may write the topic (idempotently) and nothing else on Kafka", () => {
    const p = producerPolicy("arn:aws:kafka:r:1:cluster/c/u", "t");
    expect(p.Statement.flatMap((s) => s.Action).sort()).toEqual([
      "kafka-cluster:Connect",
      "kafka-cluster:DescribeTopic",
      "kafka-cluster:WriteData",
      "kafka-cluster:WriteDataIdempotently",
    ]);
  });

  test("policies serialise the same way every time, whatever order their inputs come in", () => {
    expect(stableJson(externalSecretsPolicy(["b", "a"]))).toBe(
      stableJson(externalSecretsPolicy(["a", "b"])),
    );
    expect(stableJson({ b: 1, a: [{ d: 1, c: 2 }] })).toBe('{"a":[{"c":2,"d":1}],"b":1}');
  });

  test("the processor reads no secrets itself (External Secrets does) and sends mail from its identity only", () => {
    const p = processorPolicy({
      clusterArn: "arn:aws:kafka:r:1:cluster/c/u",
      topic: "t",
      group: "g",
      sesIdentityArn: "arn:aws:ses:r:1:identity/x",
    });
    const actions = p.Statement.flatMap((s) => s.Action);
    expect(actions.some((a) => a.startsWith("secretsmanager:"))).toBe(false);
    expect(p.Statement.find((s) => s.Sid === "SendEmail")?.Resource).toEqual([
      "arn:aws:ses:r:1:identity/x",
    ]);
  });

  test("subnets are /20s, private first, and a VPC too small is refused", () => {
    expect(subnetCidrs("10.20.0.0/16", 2)).toEqual({
      private: ["10.20.0.0/20", "10.20.16.0/20"],
      public: ["10.20.128.0/20", "10.20.144.0/20"],
    });
    expect(() => subnetCidrs("10.20.0.0/24", 2)).toThrow(/too small/);
  });

  test("the IRSA trust is scoped to one ServiceAccount and the STS audience", () => {
    const t = irsaTrust("arn:oidc", "https://oidc.example/id/X", "fanda", "fanda-processor");
    expect(t.Statement[0]?.Condition.StringEquals).toEqual({
      "oidc.example/id/X:sub": "system:serviceaccount:fanda:fanda-processor",
      "oidc.example/id/X:aud": "sts.amazonaws.com",
    });
  });
});
