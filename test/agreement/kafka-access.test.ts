/**
 * Every MSK IAM permission a component was recorded needing (kafka-access.json, recorded by
 * scripts/kafka-access.ts from the broker's authorizer log) is allowed by the policy of the
 * role that runs it, in both Pulumi stacks, and the policies grant no kafka-cluster action the
 * record does not need. The stacks are synthesized offline (infra/synth.ts); no broker needed.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { type Synthesized, synthesize } from "../../infra/synthesize.ts";
import {
  type Allowance,
  type AuthorizerDecision,
  actionMatches,
  allows,
  arnMatches,
  checkPolicy,
  IAM_ACTIONS,
  type IamPolicy,
  kafkaGrants,
  loadRecord,
  type NameMap,
  type PolicyStatement,
  parseAuthorizerLine,
  parseRequestLine,
  policyFor,
  type Requirement,
  requirementArn,
  resourceArn,
  toRequirements,
} from "./kafka-access.ts";

const STACKS = ["dev", "prod"] as const;
const record = loadRecord();

/**
 * kafka-cluster actions a role keeps although no recorded call needs them, each with the
 * reason. Empty: every grant must be backed by the record.
 */
const ALLOWANCES: Allowance[] = [];

const synthesized: Record<string, Synthesized> = {};

beforeAll(async () => {
  await Promise.all(
    STACKS.map(async (stack) => {
      synthesized[stack] = await synthesize(stack);
    }),
  );
}, 60_000);

/** The MSK cluster's ARN, as the stack outputs it. */
function clusterArnOf(stack: string): string {
  const arn = synthesized[stack]?.outputs.mskClusterArn;
  if (typeof arn !== "string") throw new Error(`the ${stack} stack outputs no mskClusterArn`);
  return arn;
}

function rolePolicy(stack: string, name: string): IamPolicy {
  const found = (synthesized[stack]?.resources ?? []).filter(
    (r) => r.type === "aws:iam/rolePolicy:RolePolicy" && r.name === name,
  );
  if (found.length !== 1) {
    throw new Error(
      `the ${stack} stack has ${found.length} aws:iam/rolePolicy:RolePolicy named ${name}; ` +
        "the role that runs this component needs exactly one with its Kafka permissions",
    );
  }
  return JSON.parse(String(found[0]?.inputs.policy)) as IamPolicy;
}

const components = Object.entries(record.components);

describe("the committed record", () => {
  test("has the four components, each with the role policy that runs it", () => {
    expect(Object.fromEntries(components.map(([c, a]) => [c, a.rolePolicy]))).toEqual({
      topics: "fanda-topics",
      producer: "fanda-producer-msk",
      processor: "fanda-processor",
      replay: "fanda-replay",
    });
  });

  test("names only actions AWS documents, each on its resource type, closed over AWS's prerequisites", () => {
    for (const [c, access] of components) {
      const has = (action: string, type?: string, name?: string) =>
        access.requires.some(
          (r) =>
            r.action === action &&
            (type === undefined || r.resourceType === type) &&
            (name === undefined || r.name === name),
        );
      for (const r of access.requires) {
        const spec = IAM_ACTIONS[r.action];
        expect(spec?.resourceType, `${c}: ${r.action}`).toBe(r.resourceType);
        for (const needed of spec?.requires ?? []) {
          const type = IAM_ACTIONS[needed]?.resourceType;
          const sameResource = type === r.resourceType;
          expect(has(needed, type, sameResource ? r.name : undefined), `${c}: ${needed}`).toBe(
            true,
          );
        }
      }
    }
  });
});

for (const stack of STACKS) {
  describe(`${stack} stack`, () => {
    test("the policies name the cluster ARN these checks use", () => {
      const arn = clusterArnOf(stack);
      const named = (synthesized[stack]?.resources ?? [])
        .filter((r) => r.type === "aws:iam/rolePolicy:RolePolicy")
        .flatMap((r) => kafkaGrants(JSON.parse(String(r.inputs.policy)) as IamPolicy))
        .filter((g) => IAM_ACTIONS[g.action]?.resourceType === "cluster")
        .map((g) => g.resource);
      expect(named.length).toBeGreaterThan(0);
      expect([...new Set(named)]).toEqual([arn]);
    });

    for (const [component, access] of components) {
      test(`${access.rolePolicy} allows every Kafka permission recorded for ${component}`, () => {
        const { missing } = checkPolicy({
          policy: rolePolicy(stack, access.rolePolicy),
          clusterArn: clusterArnOf(stack),
          requires: access.requires,
          rolePolicy: access.rolePolicy,
        });
        if (missing.length > 0) {
          throw new Error(
            `${access.rolePolicy} (${stack}) does not allow what the ${component} was recorded asking for:\n  ${missing.join("\n  ")}`,
          );
        }
      });

      test(`${access.rolePolicy} grants no Kafka access beyond what is recorded for ${component}`, () => {
        const { unneeded } = checkPolicy({
          policy: rolePolicy(stack, access.rolePolicy),
          clusterArn: clusterArnOf(stack),
          requires: access.requires,
          rolePolicy: access.rolePolicy,
          allowances: ALLOWANCES,
        });
        if (unneeded.length > 0) {
          throw new Error(
            `${access.rolePolicy} (${stack}) grants more than the ${component} was recorded needing (drop it, or add an explained allowance):\n  ${unneeded.join("\n  ")}`,
          );
        }
      });
    }
  });
}

describe("the checks bite", () => {
  const cluster = "arn:aws:kafka:ap-northeast-2:123456789012:cluster/fanda-msk/abc-1";
  const requiresOf = (c: string): Requirement[] => {
    const access = record.components[c];
    if (!access) throw new Error(`no ${c} in the record`);
    return access.requires;
  };
  const check = (c: string, policy: IamPolicy) =>
    checkPolicy({ policy, clusterArn: cluster, requires: requiresOf(c), rolePolicy: c });
  const without = (policy: { Statement: PolicyStatement[] }, action: string): IamPolicy => ({
    Statement: policy.Statement.map((s) => ({
      ...s,
      Action: [s.Action ?? []].flat().filter((a) => a !== action),
    })),
  });

  test("a policy made from the record passes both checks, for every component", () => {
    for (const [c, access] of components) {
      expect(check(c, policyFor(cluster, access.requires))).toEqual({ missing: [], unneeded: [] });
    }
  });

  test("without kafka-cluster:WriteDataIdempotently the producer and the processor fail", () => {
    for (const c of ["producer", "processor"]) {
      const policy = without(
        policyFor(cluster, requiresOf(c)),
        "kafka-cluster:WriteDataIdempotently",
      );
      expect(check(c, policy).missing).toEqual([
        `kafka-cluster:WriteDataIdempotently on ${cluster}`,
      ]);
    }
  });

  test("a processor policy whose group ARN names another group fails", () => {
    const policy = policyFor(cluster, requiresOf("processor"));
    const group = resourceArn(cluster, "group", "fanda-processor");
    const other = resourceArn(cluster, "group", "fanda-processor-old");
    const moved: IamPolicy = {
      Statement: policy.Statement.map((s) => ({
        ...s,
        Resource: [s.Resource ?? []].flat().map((r) => (r === group ? other : r)),
      })),
    };
    expect(check("processor", moved).missing).toEqual([
      `kafka-cluster:AlterGroup on ${group}`,
      `kafka-cluster:DescribeGroup on ${group}`,
    ]);
  });

  test("an extra kafka-cluster:DeleteTopic grant fails the least-privilege check", () => {
    const policy = policyFor(cluster, requiresOf("producer"));
    const topic = resourceArn(cluster, "topic", "fanda-notifications");
    policy.Statement.push({
      Effect: "Allow",
      Action: ["kafka-cluster:DeleteTopic"],
      Resource: [topic],
    });
    expect(check("producer", policy).unneeded).toEqual([
      `kafka-cluster:DeleteTopic on ${topic}: no recorded call needs it`,
    ]);
  });

  test("a needed action on every topic fails the least-privilege check, unless allowed with a reason", () => {
    const policy = policyFor(cluster, requiresOf("producer"));
    const everyTopic = resourceArn(cluster, "topic", "*");
    policy.Statement.push({
      Sid: "Wide",
      Effect: "Allow",
      Action: ["kafka-cluster:WriteData"],
      Resource: [everyTopic],
    });
    expect(check("producer", policy).unneeded).toEqual([
      `kafka-cluster:WriteData on ${everyTopic} (statement Wide): also covers topics the component never uses`,
    ]);
    const excused = checkPolicy({
      policy,
      clusterArn: cluster,
      requires: requiresOf("producer"),
      rolePolicy: "fanda-producer-msk",
      allowances: [
        { rolePolicy: "fanda-producer-msk", action: "kafka-cluster:WriteData", reason: "test" },
      ],
    });
    expect(excused.unneeded).toEqual([]);
  });

  test("the replay's random group is checked with a name of the kind the code makes", () => {
    const replay = requiresOf("replay").find((r) => r.action === "kafka-cluster:AlterGroup");
    expect(replay?.name).toBe("fanda-replay-*");
    const arn = requirementArn(cluster, replay as Requirement);
    expect(arn).toMatch(/:group\/fanda-msk\/abc-1\/fanda-replay-[0-9a-f-]{36}$/);
    const exact = policyFor(cluster, [{ ...(replay as Requirement), name: "fanda-replay-1" }]);
    expect(allows(exact, "kafka-cluster:AlterGroup", arn)).toBe(false);
  });
});

describe("IAM evaluation", () => {
  const topic =
    "arn:aws:kafka:ap-northeast-2:123456789012:topic/fanda-msk/abc-1/fanda-notifications";

  test("action wildcards expand as AWS's examples say (kafka-cluster:*Topic is the four topic actions)", () => {
    const actions = Object.keys(IAM_ACTIONS).filter((a) =>
      actionMatches("kafka-cluster:*Topic", a),
    );
    expect(actions.sort()).toEqual([
      "kafka-cluster:AlterTopic",
      "kafka-cluster:CreateTopic",
      "kafka-cluster:DeleteTopic",
      "kafka-cluster:DescribeTopic",
    ]);
    expect(actionMatches("KAFKA-CLUSTER:readdata", "kafka-cluster:ReadData")).toBe(true);
    expect(actionMatches("kafka-cluster:Read?ata", "kafka-cluster:ReadData")).toBe(true);
  });

  test("resource wildcards match within ARN fields, names case-sensitively", () => {
    expect(arnMatches("arn:aws:kafka:*:*:topic/fanda-msk/*/fanda-notifications", topic)).toBe(true);
    expect(arnMatches("arn:aws:kafka:*:topic/fanda-msk/*/fanda-notifications", topic)).toBe(false);
    expect(
      arnMatches("arn:aws:kafka:ap-northeast-2:123456789012:topic/fanda-msk/abc-1/*", topic),
    ).toBe(true);
    expect(arnMatches(topic.replace("fanda-notifications", "Fanda-Notifications"), topic)).toBe(
      false,
    );
    expect(arnMatches(topic.replace("fanda-notifications", "fanda-notification?"), topic)).toBe(
      true,
    );
    expect(arnMatches("*", topic)).toBe(true);
  });

  test("a Deny wins over an Allow; NotAction and NotResource invert", () => {
    const policy: IamPolicy = {
      Statement: [
        { Effect: "Allow", Action: "kafka-cluster:*", Resource: "*" },
        { Effect: "Deny", Action: "kafka-cluster:WriteData", Resource: topic },
      ],
    };
    expect(allows(policy, "kafka-cluster:WriteData", topic)).toBe(false);
    expect(allows(policy, "kafka-cluster:ReadData", topic)).toBe(true);
    const inverted: IamPolicy = {
      Statement: { Effect: "Allow", NotAction: "kafka-cluster:Delete*", NotResource: topic },
    };
    expect(allows(inverted, "kafka-cluster:DeleteTopic", `${topic}.dlq`)).toBe(false);
    expect(allows(inverted, "kafka-cluster:ReadData", topic)).toBe(false);
    expect(allows(inverted, "kafka-cluster:ReadData", `${topic}.dlq`)).toBe(true);
  });

  test("a statement with a Condition is refused rather than guessed", () => {
    const policy: IamPolicy = {
      Statement: [
        { Effect: "Allow", Action: "kafka-cluster:ReadData", Resource: topic, Condition: {} },
      ],
    };
    expect(() => allows(policy, "kafka-cluster:ReadData", topic)).toThrow(/Condition/);
  });
});

describe("derivation from the broker's logs", () => {
  const line = (principal: string, op: string, resource: string, api: string) =>
    `[2026-01-01 00:00:00,000] DEBUG Principal = User:${principal} is Allowed operation = ${op} from host = 127.0.0.1 on resource = ${resource} for request = ${api} with resourceRefCount = 1 based on rule DefaultAllow (kafka.authorizer.logger)`;
  const names: NameMap = {
    exact: new Map([
      ["topic:t-1", "fanda-notifications"],
      ["topic:t-1.dlq", "fanda-notifications.dlq"],
      ["group:g-1", "fanda-processor"],
    ]),
    patterns: [{ resourceType: "group", pattern: /^fanda-replay-\w+$/, name: "fanda-replay-*" }],
  };
  const decisions = (...lines: string[]) =>
    lines.map((l) => parseAuthorizerLine(l) as AuthorizerDecision);

  test("parses the authorizer's and the request logger's lines", () => {
    expect(
      parseAuthorizerLine(
        line("p", "IDEMPOTENT_WRITE", "Cluster:LITERAL:kafka-cluster", "InitProducerId"),
      ),
    ).toEqual({
      principal: "User:p",
      allowed: true,
      operation: "IDEMPOTENT_WRITE",
      resourceType: "Cluster",
      name: "kafka-cluster",
      api: "InitProducerId",
    });
    const request = (topics: unknown) =>
      `[2026-01-01 00:00:00,000] DEBUG Completed request:${JSON.stringify({ requestHeader: { requestApiKeyName: "METADATA" }, request: { topics }, principal: "User:p" })} (kafka.request.logger)`;
    expect(parseRequestLine(request(null))).toEqual({
      principal: "User:p",
      api: "METADATA",
      metadataTopics: null,
    });
    expect(parseRequestLine(request([{ name: "t-1" }]))?.metadataTopics).toEqual(["t-1"]);
    expect(parseRequestLine("[x] INFO something else")).toBeUndefined();
  });

  test("maps to IAM actions on real names and adds AWS's prerequisites", () => {
    const { requires, ignored } = toRequirements(
      decisions(
        line("p", "READ", "Topic:LITERAL:t-1", "Fetch"),
        line("p", "READ", "Group:LITERAL:fanda-replay-x1", "JoinGroup"),
        line("p", "DESCRIBE", "Topic:LITERAL:t-1.dlq", "Metadata"),
        line("p", "DESCRIBE", "Topic:LITERAL:someone-elses", "Metadata"),
      ),
      names,
      new Set(),
    );
    expect(requires.map((r) => `${r.action} ${r.resourceType}:${r.name}`)).toEqual([
      "kafka-cluster:AlterGroup group:fanda-replay-*",
      "kafka-cluster:Connect cluster:kafka-cluster",
      "kafka-cluster:DescribeGroup group:fanda-replay-*",
      "kafka-cluster:DescribeTopic topic:fanda-notifications",
      "kafka-cluster:ReadData topic:fanda-notifications",
    ]);
    expect(ignored.map((i) => i.decision.name)).toEqual(["t-1.dlq", "someone-elses"]);
  });

  test("a topic the component named in a Metadata request is required, not set aside", () => {
    const { requires } = toRequirements(
      decisions(line("p", "DESCRIBE", "Topic:LITERAL:t-1.dlq", "Metadata")),
      names,
      new Set(["t-1.dlq"]),
    );
    expect(requires.map((r) => `${r.action} ${r.name}`)).toContain(
      "kafka-cluster:DescribeTopic fanda-notifications.dlq",
    );
  });

  test("refuses what it cannot map: another resource, a cluster-wide CREATE, a denial, a missing prerequisite", () => {
    const fails = (l: string, why: RegExp) =>
      expect(() => toRequirements(decisions(l), names, new Set(["x"]))).toThrow(why);
    fails(line("p", "WRITE", "Topic:LITERAL:x", "Produce"), /did not hand the component/);
    fails(line("p", "CREATE", "Cluster:LITERAL:kafka-cluster", "CreateTopics"), /cluster-wide/);
    fails(
      line("p", "CLUSTER_ACTION", "Cluster:LITERAL:kafka-cluster", "Envelope"),
      /no MSK IAM action/,
    );
    fails(
      line("p", "WRITE", "Topic:LITERAL:t-1", "Produce").replace("is Allowed", "is Denied"),
      /denied/,
    );
    fails(
      line("p", "IDEMPOTENT_WRITE", "Cluster:LITERAL:kafka-cluster", "InitProducerId"),
      /never seen using kafka-cluster:WriteData/,
    );
  });
});
