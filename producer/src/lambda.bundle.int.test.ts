/**
 * The Lambda bundle as AWS runs it: built with `bun build --target=node`, imported by Node,
 * handed an SQS event, publishing to the real local broker (scripts/stack up).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { logLevel } from "kafkajs";
import { dlqTopicOf, ensureTopics } from "../../core/kafka.ts";
import { LOCAL_BROKERS as brokers, localKafka, runCommand } from "../../test/support/local.ts";
import { waitFor } from "../../test/support/wait.ts";
import sqsLambda from "./fixtures/sqs-lambda.json";

const topic = `fanda-lambda-${crypto.randomUUID().slice(0, 8)}`;
const outdir = mkdtempSync(join(tmpdir(), "fanda-lambda-"));
const kafka = localKafka("fanda-test", { topic, logLevel: logLevel.ERROR });

beforeAll(async () => {
  const build = await Bun.build({
    entrypoints: [join(import.meta.dir, "lambda.ts")],
    outdir,
    target: "node",
    format: "esm",
    minify: true,
    naming: "[name].mjs",
  });
  expect(build.success).toBe(true);
  await ensureTopics(kafka, topic, { partitions: 2 });
}, 60_000);

afterAll(async () => {
  rmSync(outdir, { recursive: true, force: true });
  const admin = kafka.admin();
  await admin.connect();
  await admin.deleteTopics({ topics: [topic, dlqTopicOf(topic)] }).catch(() => {});
  await admin.disconnect();
});

/** Runs the bundle's handler under Node with `event`, returning what it returned. */
async function invokeUnderNode(
  event: unknown,
  extraEnv: Record<string, string> = {},
): Promise<unknown> {
  const script = `
    import { handler } from ${JSON.stringify(join(outdir, "lambda.mjs"))};
    const event = JSON.parse(process.env.EVENT);
    const result = await handler(event, { awsRequestId: "req-bundle" });
    process.stdout.write("RESULT " + JSON.stringify(result) + "\\n");
    process.exit(0);
  `;
  const {
    stdout: out,
    stderr: err,
    code,
  } = await runCommand(["node", "--input-type=module", "-e", script], {
    env: {
      PATH: process.env.PATH ?? "",
      KAFKA_BROKERS: brokers,
      KAFKA_TOPIC: topic,
      LOG_LEVEL: "warn",
      EVENT: JSON.stringify(event),
      ...extraEnv,
    },
  });
  const line = out.split("\n").find((l) => l.startsWith("RESULT "));
  if (code !== 0 || !line) throw new Error(`node exited ${code}: ${err}\n${out}`);
  return JSON.parse(line.slice("RESULT ".length));
}

describe("Lambda bundle under Node", () => {
  test("publishes an SQS batch and reports only the bad message", async () => {
    const [first, second, third] = sqsLambda.Records;
    const event = { Records: [first, second, third, { ...first, messageId: "bad-1", body: "[]" }] };
    expect(await invokeUnderNode(event)).toEqual({
      batchItemFailures: [{ itemIdentifier: "bad-1" }],
    });

    const consumer = kafka.consumer({ groupId: `${topic}-reader`, maxWaitTimeInMs: 500 });
    const seen: { key: string; headers: Record<string, string> }[] = [];
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }) => {
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(message.headers ?? {})) headers[k] = String(v);
        seen.push({ key: String(message.key), headers });
      },
    });
    try {
      await waitFor("3 messages from the bundle", () => seen.length >= 3);
    } finally {
      await consumer.disconnect();
    }
    expect(seen.map((m) => m.key).sort()).toEqual([
      "fanda-uploads-dev/notes/회의록.txt",
      "fanda-uploads-dev/reports/negative/incident 2026-11.csv",
      "fanda-uploads-dev/reports/positive/Q3 실적 report+(final).pdf",
    ]);
    for (const m of seen) {
      expect(m.headers).toEqual({
        "content-type": "application/json",
        "schema-version": "1",
        "trace-id": "req-bundle",
        traceparent: expect.stringMatching(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/),
      });
    }
    // No X-Ray trace to continue: each S3 record starts a trace of its own.
    const traces = new Set(seen.map((m) => m.headers.traceparent?.slice(3, 35)));
    expect(traces.size).toBe(3);
  }, 60_000);

  test("with an OTLP endpoint, the invocation's spans are exported before it returns", async () => {
    const names: string[] = [];
    const receiver = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      async fetch(req) {
        const body = (await req.json()) as {
          resourceSpans?: { scopeSpans?: { spans?: { name: string }[] }[] }[];
        };
        for (const rs of body.resourceSpans ?? []) {
          for (const ss of rs.scopeSpans ?? []) names.push(...(ss.spans ?? []).map((x) => x.name));
        }
        return Response.json({});
      },
    });
    try {
      const [first] = sqsLambda.Records;
      expect(
        await invokeUnderNode(
          { Records: [first] },
          { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${receiver.port}` },
        ),
      ).toEqual({ batchItemFailures: [] });
      // The process exited right after the handler returned: what arrived was flushed by it.
      expect(names.sort()).toEqual(["ingest", `publish ${topic}`]);
    } finally {
      receiver.stop(true);
    }
  }, 60_000);
});
