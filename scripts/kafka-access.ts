/**
 * Records which MSK IAM permissions each component needs, from what it really asks Kafka for:
 * each component runs through its real entry point against the local broker's OAUTHBEARER
 * listener under its own principal (`User:<KAFKA_CLIENT_ID>`), on a fresh topic and group,
 * while the broker logs every authorization decision and every request (scripts/stack
 * audit-log). The decisions become IAM actions as test/agreement/kafka-access.ts maps them.
 *
 *   bun scripts/kafka-access.ts            record and compare with test/agreement/kafka-access.json
 *   bun scripts/kafka-access.ts --write    record and update it when the requirements changed
 *
 * Needs the local stack (scripts/stack up; a broker it started, with the authorizer). Reads
 * KAFKA_BROKERS (PLAINTEXT, 127.0.0.1:9092) and KAFKA_OAUTH_BROKERS (127.0.0.1:9094).
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import {
  AclOperationTypes,
  AclPermissionTypes,
  AclResourceTypes,
  type Kafka,
  ResourcePatternTypes,
} from "kafkajs";
import { toNotification } from "../producer/src/s3-event.ts";
import {
  type AccessRecord,
  type AuthorizerDecision,
  CLUSTER_NAME,
  type ComponentAccess,
  type Derivation,
  diffRecords,
  type LoggedRequest,
  loadRecord,
  type NameMap,
  parseAuthorizerLine,
  parseRequestLine,
  RECORD_PATH,
  RERECORD_COMMAND,
  saveRecord,
  toRequirements,
} from "../test/agreement/kafka-access.ts";
import { freePort, LOCAL_BROKERS, localKafka, runCommand } from "../test/support/local.ts";
import { waitFor } from "../test/support/wait.ts";
import { s3PutEvent } from "./upload.ts";

const ROOT = join(import.meta.dir, "..");
const TOPIC = "fanda-notifications";
const GROUP = "fanda-processor";
/** processor/src/replay.ts names its throwaway group `fanda-replay-<uuid>`. */
const REPLAY_GROUP = /^fanda-replay-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const KAFKA_VERSION = "3.9.1";

/** The components recorded, the role policy of each, in the order they run. */
export const COMPONENTS = {
  topics: { rolePolicy: "fanda-topics", entry: "bun scripts/topics.ts (topics missing)" },
  producer: {
    rolePolicy: "fanda-producer-msk",
    entry: "producer/src/lambda.ts handler, one S3 ObjectCreated event",
  },
  processor: {
    rolePolicy: "fanda-processor",
    entry:
      "bun processor/src/main.ts (ENABLED_CHANNELS=log): one delivery, one dead letter, a lag refresh, SIGTERM",
  },
  replay: { rolePolicy: "fanda-replay", entry: "bun scripts/replay.ts (--from dlq)" },
} as const;

/** A recorded component's name. */
export type ComponentName = keyof typeof COMPONENTS;

/** What {@link recordKafkaAccess} produced. */
export interface Recording {
  record: AccessRecord;
  /** Decisions set aside per component (see toRequirements). */
  ignored: Record<string, Derivation["ignored"]>;
}

/** Options of {@link recordKafkaAccess}. */
export interface RecordOptions {
  /** PLAINTEXT bootstrap (a super user: ACLs, the seeded message, clean-up). */
  brokers?: string;
  /** The OAUTHBEARER listener the components connect to. */
  oauthBrokers?: string;
  /** Progress lines. */
  progress?: (line: string) => void;
}

/** The environment every component starts from: nothing of this process's Kafka or stores. */
function baseEnv(): Record<string, string> {
  const env: Record<string, string> = { LOG_LEVEL: "warn" };
  for (const k of ["PATH", "HOME", "TMPDIR", "LANG"]) {
    const v = process.env[k];
    if (v !== undefined) env[k] = v;
  }
  return env;
}

/** Runs `scripts/stack audit-log <level>` for the broker behind `brokers`; returns the log file. */
async function auditLog(level: "debug" | "info", brokers: string): Promise<string> {
  const port = brokers.split(",")[0]?.split(":")[1] ?? "9092";
  const r = await runCommand([join(ROOT, "scripts/stack"), "audit-log", level], {
    env: { ...process.env, KAFKA_PORT: port },
  });
  const path = r.stdout.trim().split("\n").at(-1) ?? "";
  if (r.code !== 0 || !path) {
    throw new Error(`scripts/stack audit-log ${level} failed (${r.code}):\n${r.stderr}`);
  }
  return path;
}

/** Where the audit log stood: the file (by inode, which survives rolling over) and its size. */
interface LogMark {
  ino: number;
  size: number;
}

function markOf(path: string): LogMark {
  try {
    const st = statSync(path);
    return { ino: st.ino, size: st.size };
  } catch {
    return { ino: -1, size: 0 };
  }
}

/**
 * The decisions and requests of `principals` logged since `from`: the rest of the file that was
 * current then (perhaps rolled over to .1 or .2 since) and every newer file.
 */
function readAudit(path: string, from: LogMark, principals: Set<string>, marker: string) {
  const decisions: AuthorizerDecision[] = [];
  const requests: LoggedRequest[] = [];
  for (const file of [path, `${path}.1`, `${path}.2`]) {
    const at = markOf(file);
    if (at.ino === -1) continue;
    const started = at.ino === from.ino;
    const text = readFileSync(file)
      .subarray(started ? from.size : 0)
      .toString("utf8");
    for (const line of text.split("\n")) {
      if (!line.includes(marker)) continue;
      const d = parseAuthorizerLine(line);
      if (d) {
        if (principals.has(d.principal)) decisions.push(d);
        continue;
      }
      const r = parseRequestLine(line);
      if (r && principals.has(r.principal)) requests.push(r);
    }
    if (started) break;
  }
  return { decisions, requests };
}

const clusterAcl = (principal: string, operation: number, permissionType: number) => ({
  resourceType: AclResourceTypes.CLUSTER,
  resourceName: CLUSTER_NAME,
  resourcePatternType: ResourcePatternTypes.LITERAL,
  principal,
  host: "*",
  operation,
  permissionType,
});

/**
 * Refuses the cluster-wide CREATE to the recorded principals, so that Kafka asks for CREATE on
 * each topic, as it does on MSK when the policy grants CreateTopic on topic ARNs (AWS's only
 * resource for it). Any ACL on the cluster ends allow.everyone.if.no.acl.found for the cluster
 * for everyone, so everything else on the cluster is allowed to every principal explicitly.
 * @returns the undo
 */
async function refuseClusterCreate(
  kafka: Kafka,
  principals: string[],
): Promise<() => Promise<void>> {
  const allowAll = clusterAcl("User:*", AclOperationTypes.ALL, AclPermissionTypes.ALLOW);
  const denies = principals.map((p) =>
    clusterAcl(p, AclOperationTypes.CREATE, AclPermissionTypes.DENY),
  );
  const admin = kafka.admin();
  await admin.connect();
  const visible = async () => {
    const { resources } = await admin.describeAcls({
      resourceType: AclResourceTypes.CLUSTER,
      resourceName: CLUSTER_NAME,
      resourcePatternType: ResourcePatternTypes.LITERAL,
      operation: AclOperationTypes.ANY,
      permissionType: AclPermissionTypes.ANY,
    });
    return new Set(resources.flatMap((r) => r.acls.map((a) => `${a.principal} ${a.operation}`)));
  };
  await admin.createAcls({ acl: [allowAll, ...denies] });
  await waitFor("the broker to apply the recording ACLs", async () => {
    const acls = await visible();
    return principals.every((p) => acls.has(`${p} ${AclOperationTypes.CREATE}`));
  });
  return async () => {
    try {
      // Denies first: without the allow-all they would refuse the whole cluster to everyone.
      await admin.deleteAcls({ filters: denies });
      await admin.deleteAcls({ filters: [allowAll] });
    } finally {
      await admin.disconnect();
    }
  };
}

/** Spawns a component; resolves with its output once it exits 0, or throws with its output. */
async function run(what: string, cmd: string[], env: Record<string, string>): Promise<string> {
  const r = await runCommand(cmd, { cwd: ROOT, env });
  if (r.code !== 0) throw new Error(`${what} exited ${r.code}:\n${r.stderr}\n${r.stdout}`);
  return r.stdout;
}

interface StatusJson {
  deadLetters: Record<string, number>;
  channels: { name: string; delivered: number }[];
  lag: { at?: string; error?: string };
}

/** Runs the processor until it delivered one message, dead-lettered one and read its lag. */
async function runProcessor(env: Record<string, string>): Promise<void> {
  const port = await freePort();
  const proc = Bun.spawn(["bun", "processor/src/main.ts"], {
    cwd: ROOT,
    env: { ...env, HOST: "127.0.0.1", PORT: String(port) },
    stdout: "pipe",
    stderr: "pipe",
  });
  const output = Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  const failure = async (why: string) => {
    proc.kill("SIGKILL");
    const [out, err] = await output;
    return new Error(`the processor ${why}:\n${err}\n${out.slice(-2000)}`);
  };
  let stopping = false;
  const exitedEarly = proc.exited.then((code) => {
    if (!stopping) throw new Error(`exited (${code}) before it had done its work`);
  });
  try {
    await Promise.race([
      exitedEarly,
      waitFor(
        "the processor to deliver one message, dead-letter one and read its lag",
        async () => {
          const res = await fetch(`http://127.0.0.1:${port}/status.json`);
          const s = (await res.json()) as StatusJson;
          const delivered = s.channels.find((c) => c.name === "log")?.delivered ?? 0;
          return (
            delivered >= 1 &&
            (s.deadLetters["unknown-schema-version"] ?? 0) >= 1 &&
            s.lag.at !== undefined
          );
        },
        { timeoutMs: 60_000, intervalMs: 200 },
      ),
    ]);
  } catch (err) {
    throw await failure((err as Error).message);
  }
  // SIGTERM: drain and commit, as Kubernetes stops it.
  stopping = true;
  proc.kill("SIGTERM");
  let timer: ReturnType<typeof setTimeout> | undefined;
  const code = await Promise.race([
    proc.exited,
    new Promise<string>((resolve) => {
      timer = setTimeout(() => resolve("no exit in 60 s"), 60_000);
    }),
  ]);
  clearTimeout(timer);
  if (code !== 0) throw await failure(`did not stop cleanly on SIGTERM (${code})`);
}

/**
 * Records what each component asks Kafka for (see the file comment), then cleans up its
 * topics, groups and ACLs.
 * @throws Error when the broker is not the local stack's, a component fails, or a decision
 *   cannot be mapped to MSK IAM
 */
export async function recordKafkaAccess(options: RecordOptions = {}): Promise<Recording> {
  const brokers = options.brokers ?? LOCAL_BROKERS;
  const oauthBrokers = options.oauthBrokers ?? process.env.KAFKA_OAUTH_BROKERS ?? "127.0.0.1:9094";
  const progress = options.progress ?? (() => {});
  const runId = crypto.randomUUID().slice(0, 8);
  // Fresh names derived from the real ones, mapped back below.
  const topic = `${TOPIC}-access-${runId}`;
  const group = `${GROUP}-access-${runId}`;
  const principalOf = (c: ComponentName) => `fanda-access-${c}-${runId}`;
  const names = Object.keys(COMPONENTS) as ComponentName[];
  const principals = new Set(names.map((c) => `User:${principalOf(c)}`));
  const nameMap: NameMap = {
    exact: new Map([
      [`topic:${topic}`, TOPIC],
      [`topic:${topic}.dlq`, `${TOPIC}.dlq`],
      [`group:${group}`, GROUP],
    ]),
    patterns: [{ resourceType: "group", pattern: REPLAY_GROUP, name: "fanda-replay-*" }],
  };
  const envOf = (c: ComponentName) => ({
    ...baseEnv(),
    KAFKA_BROKERS: oauthBrokers,
    KAFKA_AUTH: "oauthbearer",
    KAFKA_CLIENT_ID: principalOf(c),
    KAFKA_TOPIC: topic,
  });
  const admin = localKafka(`fanda-access-${runId}`, { topic });
  const work = mkdtempSync(join(tmpdir(), "fanda-access-"));
  const logPath = await auditLog("debug", brokers);
  const mark = markOf(logPath);
  let undoAcls: (() => Promise<void>) | undefined;
  let audit: ReturnType<typeof readAudit> = { decisions: [], requests: [] };
  try {
    undoAcls = await refuseClusterCreate(admin, [...principals].sort());

    progress("topics: bun scripts/topics.ts");
    await run(
      "scripts/topics.ts",
      ["bun", "scripts/topics.ts", "--wait", "30", "--partitions", "2"],
      envOf("topics"),
    );

    progress("producer: the Lambda handler with an S3 event");
    const out = await run(
      "the Lambda handler",
      ["bun", "scripts/kafka-access.ts", "--invoke-lambda"],
      {
        ...envOf("producer"),
        FANDA_ACCESS_EVENT: JSON.stringify(s3PutEvent("fanda-access", ["reports/positive/a.pdf"])),
      },
    );
    if (!out.includes('"published":1'))
      throw new Error(`the Lambda handler published nothing: ${out}`);

    // A message of a schema version the processor does not know: it goes to the DLQ.
    const seed = admin.producer();
    await seed.connect();
    const unknown = {
      ...toNotification(
        {
          bucket: "fanda-access",
          key: "reports/positive/from-the-future.pdf",
          eventName: "ObjectCreated:Put",
          eventTime: new Date().toISOString(),
          sequencer: runId,
        },
        "positive",
      ),
      schemaVersion: 99,
    };
    await seed.send({
      topic,
      messages: [{ key: "fanda-access/future", value: JSON.stringify(unknown) }],
    });
    await seed.disconnect();

    progress(
      "processor: bun processor/src/main.ts until delivered, dead-lettered, lag read; SIGTERM",
    );
    await runProcessor({
      ...envOf("processor"),
      KAFKA_GROUP_ID: group,
      ENABLED_CHANNELS: "log",
      AUDIT_SQLITE_PATH: join(work, "processor.sqlite"),
      LAG_INTERVAL_MS: "1000",
      COMMIT_INTERVAL_MS: "1000",
    });

    progress("replay: bun scripts/replay.ts");
    const replayed = await run("scripts/replay.ts", ["bun", "scripts/replay.ts"], {
      ...envOf("replay"),
      ENABLED_CHANNELS: "log",
      AUDIT_SQLITE_PATH: join(work, "replay.sqlite"),
    });
    if (!/replayed [1-9]/.test(replayed))
      throw new Error(`the replay replayed nothing: ${replayed}`);

    audit = readAudit(logPath, mark, principals, runId);
  } finally {
    const cleanup: Promise<unknown>[] = [
      auditLog("info", brokers),
      undoAcls?.() ?? Promise.resolve(),
      (async () => {
        const a = admin.admin();
        await a.connect();
        try {
          await a.deleteTopics({ topics: [topic, `${topic}.dlq`] }).catch(() => {});
          const groups = [
            group,
            ...new Set(
              audit.decisions
                .filter((d) => d.resourceType === "Group" && REPLAY_GROUP.test(d.name))
                .map((d) => d.name),
            ),
          ];
          await a.deleteGroups(groups).catch(() => {});
        } finally {
          await a.disconnect();
        }
      })(),
    ];
    rmSync(work, { recursive: true, force: true });
    const results = await Promise.allSettled(cleanup);
    for (const r of results) if (r.status === "rejected") progress(`clean-up: ${r.reason}`);
  }

  const components: Record<string, ComponentAccess> = {};
  const ignored: Recording["ignored"] = {};
  for (const c of names) {
    const principal = `User:${principalOf(c)}`;
    const mine = audit.decisions.filter((d) => d.principal === principal);
    if (mine.length === 0) {
      throw new Error(
        `no authorizer decision for ${c} in ${logPath}: is the broker's audit log on?`,
      );
    }
    const named = new Set(
      audit.requests.flatMap((r) => (r.principal === principal ? (r.metadataTopics ?? []) : [])),
    );
    let derived: Derivation;
    try {
      derived = toRequirements(mine, nameMap, named);
    } catch (err) {
      throw new Error(`${c}: ${(err as Error).message}`);
    }
    components[c] = { ...COMPONENTS[c], requires: derived.requires };
    ignored[c] = derived.ignored;
  }
  return {
    record: {
      comment: `What each component asks Kafka for, as MSK IAM actions on real names (recorded from the broker's authorization and request logs, not written by hand). Re-record: ${RERECORD_COMMAND}. 'via' lists the requests that asked (timing decides some, e.g. heartbeats; not compared).`,
      kafkaVersion: KAFKA_VERSION,
      components,
    },
    ignored,
  };
}

/** The Lambda's real entry point, in a process of its own (a container's first invocation). */
async function invokeLambda(): Promise<void> {
  const { handler } = await import("../producer/src/lambda.ts");
  const result = await handler(JSON.parse(process.env.FANDA_ACCESS_EVENT ?? "{}"), {
    awsRequestId: "kafka-access",
  });
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      write: { type: "boolean", default: false },
      "invoke-lambda": { type: "boolean", default: false },
    },
  });
  if (values["invoke-lambda"]) {
    await invokeLambda();
  } else {
    const { record, ignored } = await recordKafkaAccess({
      progress: (line) => console.error(`[kafka-access] ${line}`),
    });
    for (const [c, access] of Object.entries(record.components)) {
      console.log(`${c} (${access.rolePolicy}):`);
      for (const r of access.requires) {
        console.log(`  ${r.action} ${r.resourceType}:${r.name}   <- ${r.via.join(", ")}`);
      }
      const set = ignored[c] ?? [];
      if (set.length > 0) {
        const topics = [...new Set(set.map((i) => i.decision.name))];
        console.log(
          `  (set aside, only in all-topics listings: DESCRIBE of ${topics.length} topics, ${set.length} times)`,
        );
      }
    }
    let committed: AccessRecord | undefined;
    try {
      committed = loadRecord();
    } catch {
      committed = undefined;
    }
    const diff = committed ? diffRecords(committed, record) : ["no committed record yet"];
    if (diff.length === 0) {
      console.log(`\nthe committed record (${RECORD_PATH}) agrees`);
    } else {
      console.log(`\ndiffers from ${RECORD_PATH}:\n${diff.map((l) => `  ${l}`).join("\n")}`);
      if (values.write) {
        saveRecord(record);
        console.log(`written ${RECORD_PATH}`);
      } else {
        process.exit(1);
      }
    }
  }
}
