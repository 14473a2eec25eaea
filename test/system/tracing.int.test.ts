/**
 * One upload, one trace: an S3 event POSTed to the ingest goes through the real local broker
 * (scripts/stack up) to the processor and its four channels (log, webhook to the sink, Slack
 * to scripts/slack-server.ts, email to aws-ses-v2-local), and the spans arrive at an OTLP/HTTP
 * receiver started here, linked ingest → publish → process → every channel's delivery.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import sesLocal from "aws-ses-v2-local";
import { type Kafka, logLevel } from "kafkajs";
import { createKafka, createPublisher, dlqTopicOf, ensureTopics } from "../../core/kafka.ts";
import { createLogger } from "../../core/log.ts";
import { loadProcessorConfig } from "../../processor/src/config.ts";
import { type RunningProcessor, startProcessor } from "../../processor/src/main.ts";
import { createCategorizer } from "../../producer/src/category.ts";
import { createIngestApp } from "../../producer/src/server.ts";
import { LOCAL_SES_ACCOUNT } from "../../scripts/ses-local.ts";
import { type Sink, startSink } from "../../scripts/sink.ts";
import { type SlackServer, startSlackServer } from "../../scripts/slack-server.ts";
import { s3PutEvent } from "../../scripts/upload.ts";
import { waitFor } from "../support/wait.ts";

const brokers = process.env.KAFKA_BROKERS ?? "127.0.0.1:9092";
const run = crypto.randomUUID().slice(0, 8);
const topic = `fanda-trace-${run}`;
const logger = createLogger({ level: "error", ns: "test" });
const token = "xoxb-trace-test";
const savedEnv = { ...process.env };

/** One span as the OTLP/JSON export carries it (the fields the test reads). */
interface ExportedSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  attributes: Record<string, unknown>;
}

let kafka: Kafka;
let sink: Sink;
let slack: SlackServer;
let ses: Server;
let receiver: ReturnType<typeof Bun.serve>;
let processor: RunningProcessor | undefined;
let ingest: ReturnType<typeof Bun.serve>;
let publisher: ReturnType<typeof createPublisher>;
const spans: ExportedSpan[] = [];
const contentTypes: string[] = [];

/** An OTLP/JSON id: hex as the spec says, base64 as protobuf-JSON mappings write it. */
const hexId = (id: unknown) =>
  typeof id !== "string" || id === ""
    ? undefined
    : /^[0-9a-f]+$/.test(id)
      ? id
      : Buffer.from(id, "base64").toString("hex");

const attributeValue = (v: Record<string, unknown> | undefined) =>
  v?.stringValue ?? (v?.intValue !== undefined ? Number(v.intValue) : (v?.boolValue ?? v));

/** An OTLP/HTTP receiver: POST /v1/traces with a JSON ExportTraceServiceRequest. */
function startReceiver() {
  return Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const url = new URL(req.url);
      if (req.method !== "POST" || url.pathname !== "/v1/traces") {
        return new Response("not found", { status: 404 });
      }
      contentTypes.push(req.headers.get("content-type") ?? "");
      const body = (await req.json()) as {
        resourceSpans?: { scopeSpans?: { spans?: Record<string, unknown>[] }[] }[];
      };
      for (const rs of body.resourceSpans ?? []) {
        for (const ss of rs.scopeSpans ?? []) {
          for (const s of ss.spans ?? []) {
            const attributes: Record<string, unknown> = {};
            for (const a of (s.attributes ?? []) as {
              key: string;
              value: Record<string, unknown>;
            }[]) {
              attributes[a.key] = attributeValue(a.value);
            }
            const parent = hexId(s.parentSpanId);
            spans.push({
              traceId: hexId(s.traceId) as string,
              spanId: hexId(s.spanId) as string,
              ...(parent ? { parentSpanId: parent } : {}),
              name: String(s.name),
              attributes,
            });
          }
        }
      }
      return Response.json({});
    },
  });
}

beforeAll(async () => {
  process.env.AWS_ACCESS_KEY_ID = "local";
  process.env.AWS_SECRET_ACCESS_KEY = "local";
  process.env.AWS_SES_ACCOUNT = JSON.stringify(LOCAL_SES_ACCOUNT);
  ses = await sesLocal({ host: "127.0.0.1", port: 0 });
  const sesEndpoint = `http://127.0.0.1:${(ses.address() as AddressInfo).port}`;
  receiver = startReceiver();
  sink = startSink();
  slack = startSlackServer({ token });
  kafka = createKafka(
    { brokers: brokers.split(","), auth: "plaintext", ssl: false, topic, clientId: "fanda-test" },
    { logger, logLevel: logLevel.ERROR },
  );
  await ensureTopics(kafka, topic, { partitions: 1 });
  const config = loadProcessorConfig({
    KAFKA_BROKERS: brokers,
    KAFKA_TOPIC: topic,
    KAFKA_GROUP_ID: `${topic}-processor`,
    HOST: "127.0.0.1",
    PORT: "0",
    ENABLED_CHANNELS: "log,webhook,slack,email",
    WEBHOOK_URL: sink.url,
    WEBHOOK_ALLOW_HTTP: "true",
    SLACK_BOT_TOKEN: token,
    SLACK_API_URL: slack.apiUrl,
    SLACK_DEFAULT_CHANNEL: "#uploads",
    SES_FROM: "fanda@example.com",
    EMAIL_TO: "ops@example.com",
    SES_ENDPOINT: sesEndpoint,
    AWS_REGION: "ap-northeast-2",
    AUDIT_SQLITE_PATH: ":memory:",
    LOG_LEVEL: "error",
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${receiver.port}`,
    OTEL_SERVICE_NAME: "fanda-trace-test",
  });
  expect(config.tracing.tracesUrl).toBe(`http://127.0.0.1:${receiver.port}/v1/traces`);
  processor = await startProcessor(config, {
    logger,
    write: () => {},
    defaultMetrics: false,
    onFatal: (err) => {
      throw err;
    },
  });
  publisher = createPublisher({ kafka, topic });
  await publisher.connect();
  const app = createIngestApp({ publisher, categorize: createCategorizer(), logger });
  ingest = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: app.fetch });
  await waitFor("processor readiness", async () => {
    const res = await fetch(`http://127.0.0.1:${processor?.port}/readyz`);
    return res.status === 200;
  });
}, 60_000);

afterAll(async () => {
  await processor?.stop();
  await publisher?.disconnect();
  await ingest?.stop(true);
  await sink?.stop();
  await slack?.stop();
  ses?.close();
  receiver?.stop(true);
  const admin = kafka.admin();
  await admin.connect();
  await admin.deleteTopics({ topics: [topic, dlqTopicOf(topic)] }).catch(() => {});
  await admin.disconnect();
  for (const k of ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SES_ACCOUNT"]) {
    if (savedEnv[k] === undefined) delete process.env[k];
    else process.env[k] = savedEnv[k];
  }
}, 60_000);

describe("tracing: one upload, one trace", () => {
  test("spans link ingest → publish → process → every channel, exported over OTLP/HTTP", async () => {
    const key = `reports/positive/traced-${run}.pdf`;
    const res = await fetch(`http://127.0.0.1:${ingest.port}/s3-events`, {
      method: "POST",
      body: JSON.stringify(s3PutEvent("fanda-uploads-dev", [key])),
    });
    expect(res.status).toBe(202);
    // A second upload continues the caller's trace from its traceparent.
    const callerTrace = "4bf92f3577b34da6a3ce929d0e0e4736";
    const continued = `reports/negative/continued-${run}.csv`;
    const res2 = await fetch(`http://127.0.0.1:${ingest.port}/s3-events`, {
      method: "POST",
      headers: { traceparent: `00-${callerTrace}-00f067aa0ba902b7-01` },
      body: JSON.stringify(s3PutEvent("fanda-uploads-dev", [continued])),
    });
    expect(res2.status).toBe(202);

    const hook = await sink.waitFor((b) => (b as { objectKey?: string }).objectKey === key);
    await sink.waitFor((b) => (b as { objectKey?: string }).objectKey === continued);
    const eventId = (hook.body as { eventId: string }).eventId;
    await waitFor("the Slack message", () =>
      slack.messages.some((m) => String(m.metadata?.event_payload.event_ids).includes(eventId)),
    );

    // Stopping the processor shuts the exporter down, which sends what is still batched.
    await processor?.stop();
    processor = undefined;
    expect(contentTypes.every((t) => t.startsWith("application/json"))).toBe(true);

    const ingestSpan = spans.find(
      (s) =>
        s.name === "ingest" &&
        !s.parentSpanId &&
        spans.some((p) => p.traceId === s.traceId && p.attributes["fanda.event_id"] === eventId),
    );
    expect(ingestSpan).toBeDefined();
    const traceId = ingestSpan?.traceId as string;
    const trace = spans.filter((s) => s.traceId === traceId);
    const byId = new Map(trace.map((s) => [s.spanId, s]));
    const parentOf = (s: ExportedSpan) => (s.parentSpanId ? byId.get(s.parentSpanId) : undefined);

    const publish = trace.find((s) => s.name === `publish ${topic}`);
    expect(publish?.attributes["fanda.event_id"]).toBe(eventId);
    expect(parentOf(publish as ExportedSpan)?.spanId).toBe(ingestSpan?.spanId);
    const processSpan = trace.find((s) => s.name === `process ${topic}`);
    expect(processSpan?.attributes["fanda.event_id"]).toBe(eventId);
    expect(processSpan?.attributes["fanda.outcome"]).toBe("final");
    expect(parentOf(processSpan as ExportedSpan)?.spanId).toBe(publish?.spanId);
    const deliveries = trace.filter((s) => s.name.startsWith("deliver "));
    expect(deliveries.map((s) => s.attributes["fanda.channel"]).sort()).toEqual([
      "email",
      "log",
      "slack",
      "webhook",
    ]);
    for (const d of deliveries) {
      expect(d.parentSpanId).toBe(processSpan?.spanId);
      expect(d.attributes["fanda.outcome"]).toBe("delivered");
      expect(d.attributes["fanda.attempts"]).toBe(1);
    }
    for (const channel of ["slack", "email"]) {
      const d = deliveries.find((s) => s.attributes["fanda.channel"] === channel);
      expect(typeof d?.attributes["fanda.provider_id"]).toBe("string");
    }
    // The webhook request names its delivery span; Slack's metadata carries the trace id.
    const webhookSpan = deliveries.find((s) => s.attributes["fanda.channel"] === "webhook");
    expect(hook.headers.traceparent).toBe(`00-${traceId}-${webhookSpan?.spanId}-01`);
    const posted = slack.messages.find((m) =>
      String(m.metadata?.event_payload.event_ids).includes(eventId),
    );
    const ids = String(posted?.metadata?.event_payload.event_ids).split(",");
    const traces = String(posted?.metadata?.event_payload.trace_ids).split(",");
    expect(traces[ids.indexOf(eventId)]).toBe(traceId);
    // The batch and the delivery-log write are spans of their own, linked to the message.
    expect(spans.some((s) => s.name === `receive ${topic}`)).toBe(true);
    expect(spans.some((s) => s.name === "delivery-log write")).toBe(true);

    // The upload with a traceparent stayed in the caller's trace, all the way to the channels.
    const theirs = spans.filter((s) => s.traceId === callerTrace);
    expect(theirs.find((s) => s.name === "ingest")?.parentSpanId).toBe("00f067aa0ba902b7");
    expect(theirs.filter((s) => s.name.startsWith("deliver ")).length).toBe(4);
  }, 90_000);
});
