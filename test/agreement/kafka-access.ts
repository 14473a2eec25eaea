/**
 * The agreement between what the code asks Kafka for and what the MSK IAM policies allow.
 *
 * The broker's authorizer logs every decision it makes for a client: principal, ACL operation,
 * resource and request (scripts/stack audit-log). scripts/kafka-access.ts runs each component
 * against it under its own principal and turns the decisions into the MSK IAM actions they
 * stand for ({@link toRequirements}), written to kafka-access.json. The unit test checks those
 * against the policies of the Pulumi stacks ({@link checkPolicy}); the integration test
 * re-records and compares.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** MSK IAM resource types, as they appear in ARNs (`arn:aws:kafka:…:<type>/…`). */
export type IamResourceType = "cluster" | "topic" | "group" | "transactional-id";

/** One authorization decision from the broker's authorizer log. */
export interface AuthorizerDecision {
  /** `User:<name>` */
  principal: string;
  allowed: boolean;
  /** Kafka ACL operation: READ, WRITE, DESCRIBE, IDEMPOTENT_WRITE, … */
  operation: string;
  /** Kafka resource type: Cluster, Topic, Group, TransactionalId, … */
  resourceType: string;
  name: string;
  /** The request that asked: Metadata, Produce, JoinGroup, … */
  api: string;
}

/** One MSK IAM permission a component needs. */
export interface Requirement {
  /** `kafka-cluster:<Action>` */
  action: string;
  resourceType: IamResourceType;
  /** Real resource name (`kafka-cluster` for the cluster); `*` stands for any characters. */
  name: string;
  /** Why: the Kafka requests that asked for it, or the action whose AWS prerequisite it is. */
  via: string[];
}

/** What one component needs, as recorded. */
export interface ComponentAccess {
  /** How the recorder ran it. */
  entry: string;
  /** The RolePolicy (aws:iam/rolePolicy:RolePolicy name) of the role that runs it. */
  rolePolicy: string;
  requires: Requirement[];
}

/** The committed record (kafka-access.json). */
export interface AccessRecord {
  comment: string;
  kafkaVersion: string;
  components: Record<string, ComponentAccess>;
}

/** Where the committed record lives. */
export const RECORD_PATH = join(import.meta.dir, "kafka-access.json");

/** The command that re-records (and, with --write, updates) the committed record. */
export const RERECORD_COMMAND = "scripts/stack up && bun scripts/kafka-access.ts --write";

// Kafka ACL (resource type, operation) -> MSK IAM action, from AWS's table "Semantics of IAM
// authorization policy actions and resources", whose Description column names each action's
// Kafka ACL equivalent: https://docs.aws.amazon.com/msk/latest/developerguide/kafka-actions.html
// CREATE on the Cluster is absent on purpose: AWS lists CreateTopic ("CREATE CLUSTER/TOPIC ACL")
// with the topic as its required resource, and Kafka asks per topic once the cluster-wide
// CREATE is refused, which the recorder arranges (scripts/kafka-access.ts) so the record names
// the topics. CLUSTER_ACTION (broker-to-broker) has no IAM action.
const ACL_TO_IAM: Record<string, { action: string; resourceType: IamResourceType }> = {
  "Cluster:DESCRIBE": { action: "kafka-cluster:DescribeCluster", resourceType: "cluster" },
  "Cluster:ALTER": { action: "kafka-cluster:AlterCluster", resourceType: "cluster" },
  "Cluster:DESCRIBE_CONFIGS": {
    action: "kafka-cluster:DescribeClusterDynamicConfiguration",
    resourceType: "cluster",
  },
  "Cluster:ALTER_CONFIGS": {
    action: "kafka-cluster:AlterClusterDynamicConfiguration",
    resourceType: "cluster",
  },
  "Cluster:IDEMPOTENT_WRITE": {
    action: "kafka-cluster:WriteDataIdempotently",
    resourceType: "cluster",
  },
  "Topic:CREATE": { action: "kafka-cluster:CreateTopic", resourceType: "topic" },
  "Topic:DESCRIBE": { action: "kafka-cluster:DescribeTopic", resourceType: "topic" },
  "Topic:ALTER": { action: "kafka-cluster:AlterTopic", resourceType: "topic" },
  "Topic:DELETE": { action: "kafka-cluster:DeleteTopic", resourceType: "topic" },
  "Topic:DESCRIBE_CONFIGS": {
    action: "kafka-cluster:DescribeTopicDynamicConfiguration",
    resourceType: "topic",
  },
  "Topic:ALTER_CONFIGS": {
    action: "kafka-cluster:AlterTopicDynamicConfiguration",
    resourceType: "topic",
  },
  "Topic:READ": { action: "kafka-cluster:ReadData", resourceType: "topic" },
  "Topic:WRITE": { action: "kafka-cluster:WriteData", resourceType: "topic" },
  "Group:DESCRIBE": { action: "kafka-cluster:DescribeGroup", resourceType: "group" },
  "Group:READ": { action: "kafka-cluster:AlterGroup", resourceType: "group" },
  "Group:DELETE": { action: "kafka-cluster:DeleteGroup", resourceType: "group" },
  "TransactionalId:DESCRIBE": {
    action: "kafka-cluster:DescribeTransactionalId",
    resourceType: "transactional-id",
  },
  "TransactionalId:WRITE": {
    action: "kafka-cluster:AlterTransactionalId",
    resourceType: "transactional-id",
  },
};

/**
 * Every MSK IAM action (same AWS page): its resource type ("Required resources") and the
 * actions a policy must also grant with it ("Required actions").
 */
export const IAM_ACTIONS: Record<string, { resourceType: IamResourceType; requires: string[] }> = {
  "kafka-cluster:Connect": { resourceType: "cluster", requires: [] },
  "kafka-cluster:DescribeCluster": {
    resourceType: "cluster",
    requires: ["kafka-cluster:Connect"],
  },
  "kafka-cluster:AlterCluster": {
    resourceType: "cluster",
    requires: ["kafka-cluster:Connect", "kafka-cluster:DescribeCluster"],
  },
  "kafka-cluster:DescribeClusterDynamicConfiguration": {
    resourceType: "cluster",
    requires: ["kafka-cluster:Connect"],
  },
  "kafka-cluster:AlterClusterDynamicConfiguration": {
    resourceType: "cluster",
    requires: ["kafka-cluster:Connect", "kafka-cluster:DescribeClusterDynamicConfiguration"],
  },
  "kafka-cluster:WriteDataIdempotently": {
    resourceType: "cluster",
    requires: ["kafka-cluster:Connect", "kafka-cluster:WriteData"],
  },
  "kafka-cluster:CreateTopic": { resourceType: "topic", requires: ["kafka-cluster:Connect"] },
  "kafka-cluster:DescribeTopic": { resourceType: "topic", requires: ["kafka-cluster:Connect"] },
  "kafka-cluster:AlterTopic": {
    resourceType: "topic",
    requires: ["kafka-cluster:Connect", "kafka-cluster:DescribeTopic"],
  },
  "kafka-cluster:DeleteTopic": {
    resourceType: "topic",
    requires: ["kafka-cluster:Connect", "kafka-cluster:DescribeTopic"],
  },
  "kafka-cluster:DescribeTopicDynamicConfiguration": {
    resourceType: "topic",
    requires: ["kafka-cluster:Connect"],
  },
  "kafka-cluster:AlterTopicDynamicConfiguration": {
    resourceType: "topic",
    requires: ["kafka-cluster:Connect", "kafka-cluster:DescribeTopicDynamicConfiguration"],
  },
  "kafka-cluster:ReadData": {
    resourceType: "topic",
    requires: ["kafka-cluster:Connect", "kafka-cluster:DescribeTopic", "kafka-cluster:AlterGroup"],
  },
  "kafka-cluster:WriteData": {
    resourceType: "topic",
    requires: ["kafka-cluster:Connect", "kafka-cluster:DescribeTopic"],
  },
  "kafka-cluster:DescribeGroup": { resourceType: "group", requires: ["kafka-cluster:Connect"] },
  "kafka-cluster:AlterGroup": {
    resourceType: "group",
    requires: ["kafka-cluster:Connect", "kafka-cluster:DescribeGroup"],
  },
  "kafka-cluster:DeleteGroup": {
    resourceType: "group",
    requires: ["kafka-cluster:Connect", "kafka-cluster:DescribeGroup"],
  },
  "kafka-cluster:DescribeTransactionalId": {
    resourceType: "transactional-id",
    requires: ["kafka-cluster:Connect"],
  },
  "kafka-cluster:AlterTransactionalId": {
    resourceType: "transactional-id",
    requires: [
      "kafka-cluster:Connect",
      "kafka-cluster:DescribeTransactionalId",
      "kafka-cluster:WriteData",
    ],
  },
};

/** Kafka's name for the cluster resource, used as the cluster's name in requirements. */
export const CLUSTER_NAME = "kafka-cluster";

const AUDIT_LINE =
  /Principal = (\S+) is (Allowed|Denied) operation = (\w+) from host = \S+ on resource = (\w+):\w+:(.*?) for request = (\w+) with /;

/**
 * Parses one line of the broker's authorizer log (StandardAuthorizer's audit message).
 * @returns undefined for lines that are not authorization decisions
 */
export function parseAuthorizerLine(line: string): AuthorizerDecision | undefined {
  const m = AUDIT_LINE.exec(line);
  if (!m) return undefined;
  const [, principal, result, operation, resourceType, name, api] = m as unknown as string[];
  return {
    principal: principal as string,
    allowed: result === "Allowed",
    operation: operation as string,
    resourceType: resourceType as string,
    name: name as string,
    api: api as string,
  };
}

/** One completed request from the broker's request log, as far as the recording needs it. */
export interface LoggedRequest {
  principal: string;
  /** Kafka's request name: METADATA, PRODUCE, … */
  api: string;
  /** A Metadata request's topic names; null when it asked for every topic. */
  metadataTopics?: string[] | null;
}

const REQUEST_LINE = /Completed request:(\{.*\}) \(kafka\.request\.logger\)$/;

/**
 * Parses one line of the broker's request log (kafka.request.logger at DEBUG: the request
 * header, body and response as JSON).
 * @returns undefined for lines that are not completed requests
 */
export function parseRequestLine(line: string): LoggedRequest | undefined {
  const m = REQUEST_LINE.exec(line);
  if (!m) return undefined;
  let json: {
    principal?: string;
    requestHeader?: { requestApiKeyName?: string };
    request?: { topics?: { name?: string | null }[] | null };
  };
  try {
    json = JSON.parse(m[1] as string);
  } catch {
    return undefined;
  }
  const api = json.requestHeader?.requestApiKeyName;
  if (!json.principal || !api) return undefined;
  if (api !== "METADATA") return { principal: json.principal, api };
  const topics = json.request?.topics;
  return {
    principal: json.principal,
    api,
    metadataTopics:
      topics === null || topics === undefined
        ? null
        : topics.flatMap((t) => (t.name ? [t.name] : [])),
  };
}

/** How recorded (test) resource names map back to the real ones. */
export interface NameMap {
  /** Exact names: key `<iam resource type>:<recorded name>`. */
  exact: Map<string, string>;
  /** Names the code makes up (the replay's random group), matched by pattern. */
  patterns: { resourceType: IamResourceType; pattern: RegExp; name: string }[];
}

/** What {@link toRequirements} derived, and what it set aside. */
export interface Derivation {
  requires: Requirement[];
  /** Decisions left out, with the reason (reported, never silently dropped). */
  ignored: { decision: AuthorizerDecision; reason: string }[];
}

const key = (r: Pick<Requirement, "action" | "resourceType" | "name">) =>
  `${r.action} ${r.resourceType}:${r.name}`;

/**
 * Turns one component's authorizer decisions into the MSK IAM permissions it needs: each
 * allowed decision mapped through AWS's ACL equivalents, names mapped back to the real ones,
 * then closed over AWS's "Required actions" (same resource, or the cluster for Connect).
 *
 * A topic's DESCRIBE in a Metadata request is set aside unless the component named that topic
 * in a Metadata request (`metadataTopics`, from the request log): otherwise it came from an
 * all-topics listing (kafkajs lists every topic on connect), which Kafka, and MSK the same way,
 * filters by DESCRIBE without failing anything.
 * @param metadataTopics the (recorded) topic names of the component's Metadata requests that
 *   named topics
 * @throws Error for a denied decision, a resource the recorder did not hand the component, a
 *   Kafka operation without an IAM equivalent, or a prerequisite on another resource type
 *   (WriteDataIdempotently -> WriteData) that the component was never seen using
 */
export function toRequirements(
  decisions: readonly AuthorizerDecision[],
  names: NameMap,
  metadataTopics: ReadonlySet<string>,
): Derivation {
  const found = new Map<string, Requirement>();
  const ignored: Derivation["ignored"] = [];
  const add = (r: Omit<Requirement, "via">, via: string) => {
    const k = key(r);
    const existing = found.get(k);
    if (existing) {
      if (!existing.via.includes(via)) existing.via.push(via);
    } else {
      found.set(k, { ...r, via: [via] });
    }
  };
  const problems: string[] = [];
  for (const d of decisions) {
    const what = `${d.operation} ${d.resourceType}:${d.name} (${d.api})`;
    if (!d.allowed) {
      problems.push(`the broker denied ${what}`);
      continue;
    }
    const mapped = ACL_TO_IAM[`${d.resourceType}:${d.operation}`];
    if (!mapped) {
      problems.push(
        d.resourceType === "Cluster" && d.operation === "CREATE"
          ? `${what} was allowed cluster-wide; the recorder must refuse it so Kafka asks per topic`
          : `${what} has no MSK IAM action in AWS's table`,
      );
      continue;
    }
    if (
      d.operation === "DESCRIBE" &&
      d.resourceType === "Topic" &&
      d.api === "Metadata" &&
      !metadataTopics.has(d.name)
    ) {
      ignored.push({ decision: d, reason: "only in all-topics metadata listings" });
      continue;
    }
    const real = realName(mapped.resourceType, d.name, names);
    if (real === undefined) {
      problems.push(`${what} names a resource the recorder did not hand the component`);
      continue;
    }
    add({ ...mapped, name: real }, d.api);
  }
  // AWS's required actions, to a fixed point.
  for (let changed = true; changed; ) {
    changed = false;
    for (const r of [...found.values()]) {
      for (const needed of IAM_ACTIONS[r.action]?.requires ?? []) {
        const type = IAM_ACTIONS[needed]?.resourceType;
        if (!type) throw new Error(`${needed} is not in the AWS action table`);
        const via = `required with ${r.action}`;
        if (type === r.resourceType || type === "cluster") {
          const name = type === r.resourceType ? r.name : CLUSTER_NAME;
          const before = found.size;
          add({ action: needed, resourceType: type, name }, via);
          if (found.size !== before) changed = true;
        } else if (![...found.values()].some((f) => f.action === needed)) {
          problems.push(
            `AWS requires ${needed} with ${r.action}, but the component was never seen using ${needed}`,
          );
        }
      }
    }
  }
  if (problems.length > 0) throw new Error([...new Set(problems)].join("\n"));
  const requires = [...found.values()]
    .map((r) => ({ ...r, via: [...r.via].sort() }))
    .sort((a, b) => key(a).localeCompare(key(b)));
  return { requires, ignored };
}

function realName(type: IamResourceType, recorded: string, names: NameMap): string | undefined {
  if (type === "cluster") return recorded === CLUSTER_NAME ? CLUSTER_NAME : undefined;
  const exact = names.exact.get(`${type}:${recorded}`);
  if (exact !== undefined) return exact;
  return names.patterns.find((p) => p.resourceType === type && p.pattern.test(recorded))?.name;
}

/** The ARN MSK IAM authorizes `name` of `type` against, in the cluster `clusterArn`. */
export function resourceArn(clusterArn: string, type: IamResourceType, name: string): string {
  if (type === "cluster") return clusterArn;
  const at = clusterArn.indexOf(":cluster/");
  if (at < 0) throw new Error(`not an MSK cluster ARN: ${clusterArn}`);
  return `${clusterArn.slice(0, at)}:${type}/${clusterArn.slice(at + ":cluster/".length)}/${name}`;
}

// A requirement's `*` (the replay's random group) is checked with a name of the kind the code
// makes: a policy must allow that one, whatever it does with other names.
const WILDCARD_SAMPLE = "0f8e3c1a-5b7d-4c2e-9a61-3d4f5e6a7b8c";

/** The concrete ARN a requirement is checked against. */
export function requirementArn(clusterArn: string, r: Omit<Requirement, "via">): string {
  return resourceArn(clusterArn, r.resourceType, r.name.replaceAll("*", WILDCARD_SAMPLE));
}

// ---------------------------------------------------------------------------------------------
// IAM policy evaluation: Allow and Deny statements, Action/NotAction, Resource/NotResource,
// `*` and `?` wildcards; actions compare case-insensitively, ARNs case-sensitively, and each of
// the first five ARN fields is matched on its own, as IAM does.

/** An IAM policy statement as it appears in a policy document. */
export interface PolicyStatement {
  Sid?: string;
  Effect: "Allow" | "Deny";
  Action?: string | string[];
  NotAction?: string | string[];
  Resource?: string | string[];
  NotResource?: string | string[];
  Condition?: unknown;
}

/** An IAM policy document. */
export interface IamPolicy {
  Version?: string;
  Statement: PolicyStatement | PolicyStatement[];
}

const list = (v: string | string[] | undefined) => (v === undefined ? [] : [v].flat());

function glob(pattern: string, value: string, ignoreCase: boolean): boolean {
  const source = pattern
    .replace(/[.+^${}()|[\]\\]/g, "\\$&")
    .replace(/\*/g, ".*")
    .replace(/\?/g, ".");
  return new RegExp(`^${source}$`, ignoreCase ? "is" : "s").test(value);
}

/** Whether the Resource pattern `pattern` covers `arn`. */
export function arnMatches(pattern: string, arn: string): boolean {
  if (pattern === "*") return true;
  const split = (s: string) => {
    const parts = s.split(":");
    return [...parts.slice(0, 5), parts.slice(5).join(":")];
  };
  const p = split(pattern);
  const a = split(arn);
  if (p.length !== 6 || a.length !== 6) return false;
  return p.every((part, i) => glob(part, a[i] as string, false));
}

/** Whether the Action pattern `pattern` covers `action`. */
export const actionMatches = (pattern: string, action: string) => glob(pattern, action, true);

function statements(policy: IamPolicy): PolicyStatement[] {
  return [policy.Statement].flat();
}

function statementMatches(s: PolicyStatement, action: string, arn: string): boolean {
  const actionHit =
    s.Action !== undefined
      ? list(s.Action).some((p) => actionMatches(p, action))
      : !list(s.NotAction).some((p) => actionMatches(p, action));
  const resourceHit =
    s.Resource !== undefined
      ? list(s.Resource).some((p) => arnMatches(p, arn))
      : !list(s.NotResource).some((p) => arnMatches(p, arn));
  if (actionHit && resourceHit && s.Condition !== undefined) {
    throw new Error(
      `statement ${s.Sid ?? "(no Sid)"} has a Condition; this check cannot evaluate conditions`,
    );
  }
  return actionHit && resourceHit;
}

/** Whether `policy` allows `action` on `arn`: an Allow matches and no Deny does. */
export function allows(policy: IamPolicy, action: string, arn: string): boolean {
  let allowed = false;
  for (const s of statements(policy)) {
    if (!statementMatches(s, action, arn)) continue;
    if (s.Effect === "Deny") return false;
    allowed = true;
  }
  return allowed;
}

/** One kafka-cluster action granted on one Resource pattern. */
export interface Grant {
  sid: string;
  action: string;
  resource: string;
}

/** Every kafka-cluster action `policy` allows, per Resource pattern (wildcards expanded). */
export function kafkaGrants(policy: IamPolicy): Grant[] {
  const grants: Grant[] = [];
  for (const s of statements(policy)) {
    if (s.Effect !== "Allow") continue;
    const actions = Object.keys(IAM_ACTIONS).filter((a) =>
      s.Action !== undefined
        ? list(s.Action).some((p) => actionMatches(p, a))
        : !list(s.NotAction).some((p) => actionMatches(p, a)),
    );
    if (actions.length === 0) continue;
    const resources = s.Resource !== undefined ? list(s.Resource) : ["*"];
    for (const action of actions) {
      for (const resource of resources) grants.push({ sid: s.Sid ?? "", action, resource });
    }
  }
  return grants;
}

/** An explained exception to the least-privilege check: the role keeps `action` anyway. */
export interface Allowance {
  rolePolicy: string;
  action: string;
  /** Why the role keeps it although no recorded call needs it. */
  reason: string;
}

/** What {@link checkPolicy} found. */
export interface PolicyCheck {
  /** Requirements the policy does not allow. */
  missing: string[];
  /** kafka-cluster grants no requirement needs, or that reach resources the component never uses. */
  unneeded: string[];
}

// Resources no component uses: a grant whose pattern covers one of these reaches further than
// the record (a `*` for the topic or group name, or for the cluster).
const UNRELATED: Record<IamResourceType, string> = {
  cluster: "other-cluster",
  topic: "some-other-topic",
  group: "some-other-group",
  "transactional-id": "some-other-transactional-id",
};

function unrelatedArn(clusterArn: string, type: IamResourceType): string {
  if (type !== "cluster") return resourceArn(clusterArn, type, UNRELATED[type]);
  return clusterArn.replace(/:cluster\/[^/]+\//, `:cluster/${UNRELATED.cluster}/`);
}

/**
 * Checks a component's requirements against the policy of the role that runs it: every
 * requirement allowed; every kafka-cluster grant needed by some requirement on a resource its
 * pattern covers, and not reaching unrelated resources (except the allowances).
 */
export function checkPolicy(options: {
  policy: IamPolicy;
  clusterArn: string;
  requires: readonly Omit<Requirement, "via">[];
  rolePolicy: string;
  allowances?: readonly Allowance[];
}): PolicyCheck {
  const { policy, clusterArn, requires } = options;
  const missing = requires
    .filter((r) => !allows(policy, r.action, requirementArn(clusterArn, r)))
    .map((r) => `${r.action} on ${requirementArn(clusterArn, r)}`);
  const excused = new Set(
    (options.allowances ?? [])
      .filter((a) => a.rolePolicy === options.rolePolicy)
      .map((a) => a.action.toLowerCase()),
  );
  const unneeded: string[] = [];
  for (const g of kafkaGrants(policy)) {
    if (excused.has(g.action.toLowerCase())) continue;
    const type = IAM_ACTIONS[g.action]?.resourceType as IamResourceType;
    const where = `${g.action} on ${g.resource}${g.sid ? ` (statement ${g.sid})` : ""}`;
    const needed = requires.some(
      (r) => r.action === g.action && arnMatches(g.resource, requirementArn(clusterArn, r)),
    );
    if (!needed) unneeded.push(`${where}: no recorded call needs it`);
    else if (arnMatches(g.resource, unrelatedArn(clusterArn, type))) {
      unneeded.push(`${where}: also covers ${type}s the component never uses`);
    }
  }
  return { missing, unneeded };
}

/**
 * The least policy that allows `requires`: one statement per resource, actions sorted.
 * What the record says a role needs, in the form infra/iam.ts writes policies.
 */
export function policyFor(
  clusterArn: string,
  requires: readonly Omit<Requirement, "via">[],
): IamPolicy & { Statement: PolicyStatement[] } {
  const byResource = new Map<string, Set<string>>();
  for (const r of requires) {
    const arn = resourceArn(clusterArn, r.resourceType, r.name);
    const actions = byResource.get(arn) ?? new Set<string>();
    actions.add(r.action);
    byResource.set(arn, actions);
  }
  return {
    Version: "2012-10-17",
    Statement: [...byResource.entries()].map(([arn, actions]) => ({
      Effect: "Allow" as const,
      Action: [...actions].sort(),
      Resource: [arn],
    })),
  };
}

// ---------------------------------------------------------------------------------------------
// The record file.

/** Reads the committed record. */
export function loadRecord(path = RECORD_PATH): AccessRecord {
  return JSON.parse(readFileSync(path, "utf8")) as AccessRecord;
}

/** Writes a record the way it is committed (two-space JSON, trailing newline). */
export function saveRecord(record: AccessRecord, path = RECORD_PATH): void {
  writeFileSync(path, `${JSON.stringify(record, null, 2)}\n`);
}

/**
 * What differs between two records in what they require (component, action, resource); the
 * `via` lists are explanation only: which requests ask for a permission varies with timing
 * (a heartbeat may or may not fall into a run) while the permission does not.
 * @returns one line per difference, empty when they agree
 */
export function diffRecords(committed: AccessRecord, recorded: AccessRecord): string[] {
  const lines: string[] = [];
  const components = new Set([
    ...Object.keys(committed.components),
    ...Object.keys(recorded.components),
  ]);
  for (const c of [...components].sort()) {
    const before = committed.components[c];
    const after = recorded.components[c];
    if (!before || !after) {
      lines.push(`${c}: ${before ? "no longer recorded" : "not in the committed record"}`);
      continue;
    }
    if (before.rolePolicy !== after.rolePolicy) {
      lines.push(`${c}: role policy ${before.rolePolicy} -> ${after.rolePolicy}`);
    }
    const was = new Set(before.requires.map(key));
    const now = new Set(after.requires.map(key));
    for (const k of now) if (!was.has(k)) lines.push(`${c} now asks for ${k} (not in the record)`);
    for (const k of was)
      if (!now.has(k)) lines.push(`${c} no longer asks for ${k} (in the record)`);
  }
  return lines;
}
