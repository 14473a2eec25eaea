/**
 * Stack configuration (Pulumi.<stack>.yaml, namespace `fanda`), validated once with zod.
 * Every problem is reported at once; nothing is read from the developer's machine.
 */
import { z } from "zod";

const schema = z
  .object({
    env: z.enum(["dev", "prod"], { error: "expected dev or prod" }),
    region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/, "expected an AWS region"),
    vpcCidr: z
      .string()
      .regex(/^\d{1,3}(\.\d{1,3}){3}\/(1[6-9]|2[0-4])$/, "expected an IPv4 CIDR from /16 to /24"),
    azCount: z.number().int().min(2, "MSK and RDS need at least 2 AZs").max(3),
    natPerAz: z.boolean(),
    multiAz: z.boolean(),
    mskInstanceType: z.string().startsWith("kafka.", "expected an MSK broker type (kafka.*)"),
    mskBrokersPerAz: z.number().int().min(1).max(4),
    mskKafkaVersion: z
      .string()
      .regex(/^3\.9\.(x|\d+)$/, "expected Kafka 3.9.x (what kafkajs speaks)"),
    eksVersion: z.string().regex(/^1\.\d{2}$/, "expected a Kubernetes minor version like 1.33"),
    systemNodeType: z.string().min(1),
    dbInstanceClass: z.string().startsWith("db.", "expected an RDS class (db.*)"),
    dbAllocatedStorage: z.number().int().min(20).max(65536),
    cacheNodeType: z.string().startsWith("cache.", "expected an ElastiCache node type (cache.*)"),
    cacheReplicas: z.number().int().min(0).max(5),
    lambdaReservedConcurrency: z.number().int().min(1).max(1000),
    sesDomain: z.string().regex(/^[a-z0-9.-]+\.[a-z]{2,}$/, "expected a domain name"),
    alarmEmail: z.email({ error: "expected an email address" }).optional(),
    adminPrincipalArn: z
      .string()
      .regex(
        /^arn:aws:iam::\d{12}:(role|user)\/[\w+=,.@/-]+$/,
        "expected the ARN of an IAM role or user that administers the cluster",
      ),
    namespace: z
      .string()
      .regex(
        /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/,
        "expected a Kubernetes namespace name (RFC 1123 label)",
      ),
    repository: z
      .string()
      .regex(/^[A-Za-z0-9-]+\/[A-Za-z0-9._-]+$/, "expected a GitHub repository as owner/name"),
    partitions: z.number().int().min(1).max(120),
    slackChannel: z
      .string()
      .regex(
        /^(#[a-z0-9][a-z0-9_-]{0,79}|[CG][A-Z0-9]{8,})$/,
        "expected #channel-name or a channel id",
      ),
    emailTo: z
      .string()
      .refine(
        (v) => v.split(",").every((a) => z.email().safeParse(a.trim()).success),
        "expected comma-separated email addresses",
      ),
  })
  .superRefine((c, ctx) => {
    if (c.env === "prod" && !c.multiAz) {
      ctx.addIssue({ code: "custom", path: ["multiAz"], message: "prod must be Multi-AZ" });
    }
    if (c.env === "prod" && !c.natPerAz) {
      ctx.addIssue({
        code: "custom",
        path: ["natPerAz"],
        message: "prod needs one NAT gateway per AZ",
      });
    }
    if (c.multiAz && c.cacheReplicas < 1) {
      ctx.addIssue({
        code: "custom",
        path: ["cacheReplicas"],
        message: "Multi-AZ Redis needs at least one replica",
      });
    }
  });

/** The stack's validated settings. */
export type InfraConfig = z.output<typeof schema>;

/**
 * Validates raw stack configuration.
 * @throws Error listing every invalid key, as `fanda:<key>: <problem>`
 */
export function parseInfraConfig(raw: unknown): InfraConfig {
  const parsed = schema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const lines = parsed.error.issues.map(
    (i) => `fanda:${i.path.join(".") || "(config)"}: ${i.message}`,
  );
  throw new Error(`invalid stack configuration:\n  - ${lines.join("\n  - ")}`);
}

/** Names and numbers every layer derives from the stack configuration, computed in one place. */
export interface Derived {
  /** EKS cluster name; also the Karpenter discovery tag and part of per-cluster role names. */
  clusterName: string;
  /** Prefix of account-wide names (secrets, ECR), so dev and prod can share one account. */
  prefix: string;
  brokers: number;
  /** Never above the broker count, at most 3. */
  replicationFactor: number;
  /** Below the replication factor, so one broker down (MSK patching) never blocks writes. */
  minInsyncReplicas: number;
  sesFrom: string;
  repoUrl: string;
}

/** What {@link InfraConfig} implies for the other layers. */
export function derive(c: InfraConfig): Derived {
  const brokers = c.azCount * c.mskBrokersPerAz;
  const replicationFactor = Math.min(3, brokers);
  return {
    clusterName: `fanda-${c.env}`,
    prefix: `fanda/${c.env}`,
    brokers,
    replicationFactor,
    minInsyncReplicas: Math.max(1, replicationFactor - 1),
    sesFrom: `fanda@${c.sesDomain}`,
    repoUrl: `https://github.com/${c.repository}.git`,
  };
}
