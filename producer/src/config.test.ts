import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { ConfigError } from "../../core/errors.ts";
import { hostileString, ownObject, PROTOTYPE_NAMES } from "../../core/testing/hostile.ts";
import { loadProducerConfig } from "./config.ts";

function issuesOf(env: Record<string, string>): string[] {
  try {
    loadProducerConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return [...err.issues];
    throw err;
  }
  throw new Error("expected a ConfigError");
}

describe("loadProducerConfig", () => {
  test("defaults are the local ones", () => {
    expect(loadProducerConfig({})).toEqual({
      kafka: {
        brokers: ["127.0.0.1:9092"],
        auth: "plaintext",
        ssl: false,
        topic: "fanda-notifications",
        clientId: "fanda",
      },
      port: 8081,
      categoryRules: [
        { prefix: "reports/positive/", category: "positive" },
        { prefix: "reports/negative/", category: "negative" },
      ],
      notifyOnRemoved: false,
      logLevel: "info",
      tracing: { serviceName: "fanda-producer", sampler: "parentbased_always_on", samplerRatio: 1 },
    });
  });

  test("tracing: exports only with an OTLP endpoint, and not when disabled", () => {
    expect(loadProducerConfig({}).tracing.tracesUrl).toBeUndefined();
    const on = loadProducerConfig({
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318",
      OTEL_SERVICE_NAME: "ingest",
      OTEL_TRACES_SAMPLER: "parentbased_traceidratio",
      OTEL_TRACES_SAMPLER_ARG: "0.25",
    }).tracing;
    expect(on).toEqual({
      tracesUrl: "http://collector:4318/v1/traces",
      serviceName: "ingest",
      sampler: "parentbased_traceidratio",
      samplerRatio: 0.25,
    });
    expect(
      loadProducerConfig({
        OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318/",
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://traces:4318/custom",
      }).tracing.tracesUrl,
    ).toBe("http://traces:4318/custom");
    for (const off of [{ OTEL_SDK_DISABLED: "true" }, { OTEL_TRACES_EXPORTER: "none" }]) {
      expect(
        loadProducerConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", ...off }).tracing
          .tracesUrl,
      ).toBeUndefined();
    }
  });

  test("tracing: malformed OTEL_* settings are refused, each by name", () => {
    const issues = issuesOf({
      OTEL_EXPORTER_OTLP_ENDPOINT: "collector:4318",
      OTEL_EXPORTER_OTLP_PROTOCOL: "grpc",
      OTEL_TRACES_SAMPLER: "jaeger_remote",
      OTEL_TRACES_SAMPLER_ARG: "2",
      OTEL_SDK_DISABLED: "maybe",
      OTEL_SERVICE_NAME: "has space",
    });
    for (const name of [
      "OTEL_EXPORTER_OTLP_ENDPOINT",
      "OTEL_EXPORTER_OTLP_PROTOCOL",
      "OTEL_TRACES_SAMPLER",
      "OTEL_TRACES_SAMPLER_ARG",
      "OTEL_SDK_DISABLED",
      "OTEL_SERVICE_NAME",
    ]) {
      expect(issues.some((i) => i.startsWith(`${name}:`))).toBe(true);
    }
    expect(issuesOf({ OTEL_TRACES_SAMPLER_ARG: "0.5" })).toEqual([
      "OTEL_TRACES_SAMPLER_ARG: only read with a traceidratio sampler",
    ]);
  });

  test("reads MSK IAM settings; TLS is on by default for iam", () => {
    const c = loadProducerConfig({
      KAFKA_BROKERS: "b-1.msk.example:9098, b-2.msk.example:9098",
      KAFKA_AUTH: "iam",
      AWS_REGION: "ap-northeast-2",
    });
    expect(c.kafka).toMatchObject({
      brokers: ["b-1.msk.example:9098", "b-2.msk.example:9098"],
      auth: "iam",
      ssl: true,
      region: "ap-northeast-2",
    });
  });

  test("KAFKA_SSL overrides the auth mode's TLS default", () => {
    expect(loadProducerConfig({ KAFKA_SSL: "true" }).kafka.ssl).toBe(true);
    expect(
      loadProducerConfig({ KAFKA_AUTH: "iam", AWS_REGION: "eu-west-1", KAFKA_SSL: "no" }).kafka.ssl,
    ).toBe(false);
    expect(issuesOf({ KAFKA_SSL: "tls" })).toEqual(["KAFKA_SSL: expected true or false"]);
  });

  test("treats empty strings as unset", () => {
    expect(loadProducerConfig({ KAFKA_TOPIC: "", PRODUCER_PORT: "  " }).port).toBe(8081);
  });

  test("reads booleans as words, so 'false' is false", () => {
    expect(loadProducerConfig({ NOTIFY_ON_REMOVED: "false" }).notifyOnRemoved).toBe(false);
    expect(loadProducerConfig({ NOTIFY_ON_REMOVED: "true" }).notifyOnRemoved).toBe(true);
    expect(issuesOf({ NOTIFY_ON_REMOVED: "maybe" })).toEqual([
      "NOTIFY_ON_REMOVED: expected true or false",
    ]);
  });

  test("reports every bad variable at once, by name", () => {
    const issues = issuesOf({
      KAFKA_BROKERS: "localhost",
      KAFKA_AUTH: "kerberos",
      PRODUCER_PORT: "70000",
      KAFKA_TOPIC: "bad topic!",
      LOG_LEVEL: "loud",
    });
    expect(issues.map((i) => i.split(":")[0])).toEqual([
      "KAFKA_BROKERS",
      "KAFKA_AUTH",
      "KAFKA_TOPIC",
      "PRODUCER_PORT",
      "LOG_LEVEL",
    ]);
    expect(issues[0]).toContain("expected host:port");
  });

  test.each([
    ["a port out of range", "host:99999", "port must be 1-65535"],
    ["an empty list", " , ", "no broker given"],
    ["a missing port", "a:9092,b", '"b": expected host:port'],
  ])("rejects KAFKA_BROKERS with %s", (_name, value, message) => {
    expect(issuesOf({ KAFKA_BROKERS: value }).join("\n")).toContain(message);
  });

  test("iam needs AWS_REGION; scram needs username and password", () => {
    expect(issuesOf({ KAFKA_AUTH: "iam" })).toEqual([
      "AWS_REGION: is required when KAFKA_AUTH=iam",
    ]);
    expect(issuesOf({ KAFKA_AUTH: "scram" })).toEqual([
      "KAFKA_SASL_USERNAME: is required when KAFKA_AUTH=scram",
      "KAFKA_SASL_PASSWORD: is required when KAFKA_AUTH=scram",
    ]);
    expect(issuesOf({ KAFKA_AUTH: "iam", AWS_REGION: "Seoul" })[0]).toContain("AWS_REGION");
  });

  test("never echoes a secret value in an error", () => {
    const secret = "s3cr3t-p4ssw0rd-value";
    const issues = issuesOf({
      KAFKA_AUTH: "scram",
      KAFKA_SASL_PASSWORD: secret,
      PRODUCER_PORT: secret,
    });
    expect(issues.join("\n")).not.toContain(secret);
  });

  test("reads CATEGORY_RULES and reports bad ones under the producer scope", () => {
    expect(
      loadProducerConfig({ CATEGORY_RULES: '[{"prefix":"x/","category":"xs"}]' }).categoryRules,
    ).toEqual([{ prefix: "x/", category: "xs" }]);
    expect(issuesOf({ CATEGORY_RULES: "nope" })[0]).toContain("CATEGORY_RULES: not valid JSON");
  });
});

describe("loadProducerConfig (property)", () => {
  test("any environment gives a configuration or raises ConfigError, nothing else", () => {
    const names = fc.constantFrom(
      "KAFKA_BROKERS",
      "KAFKA_AUTH",
      "KAFKA_SSL",
      "KAFKA_TOPIC",
      "AWS_REGION",
      "PRODUCER_PORT",
      "CATEGORY_RULES",
      "NOTIFY_ON_REMOVED",
      "LOG_LEVEL",
      ...PROTOTYPE_NAMES,
    );
    const env = fc
      .array(fc.tuple(fc.oneof(names, hostileString), hostileString), { maxLength: 8 })
      .map((entries) => ownObject(entries) as Record<string, string>);
    fc.assert(
      fc.property(env, (e) => {
        try {
          expect(loadProducerConfig(e).kafka.brokers.length).toBeGreaterThan(0);
        } catch (err) {
          expect(err).toBeInstanceOf(ConfigError);
        }
      }),
      { numRuns: 500 },
    );
  });
});
