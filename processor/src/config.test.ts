import { describe, expect, test } from "bun:test";
import { loadProcessorConfig } from "./config.ts";
import { ConfigError } from "./errors.ts";

function issuesOf(env: Record<string, string>): string[] {
  try {
    loadProcessorConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return [...err.issues];
    throw err;
  }
  throw new Error("expected a ConfigError");
}

describe("loadProcessorConfig", () => {
  test("the default channels, slack and email, name the settings they need", () => {
    expect(issuesOf({})).toEqual([
      "SLACK_BOT_TOKEN: is required when ENABLED_CHANNELS includes slack",
      "SES_FROM: is required when ENABLED_CHANNELS includes email",
      "AWS_REGION: is required when ENABLED_CHANNELS includes email",
    ]);
    const c = loadProcessorConfig({
      SLACK_BOT_TOKEN: "xoxb-123-abc",
      SLACK_DEFAULT_CHANNEL: "#uploads",
      SES_FROM: "fanda@example.com",
      EMAIL_TO: "ops@example.com, oncall@example.com",
      AWS_REGION: "ap-northeast-2",
    });
    expect(c.channels).toEqual(["slack", "email"]);
    expect(c.channelSettings.slack).toEqual({
      token: "xoxb-123-abc",
      defaultChannel: "#uploads",
      ratePerSecond: 1,
      burst: 3,
      retryAfterMaxMs: 30_000,
      digest: true,
      digestMax: 100,
    });
    expect(c.channelSettings.email).toEqual({
      from: "fanda@example.com",
      defaultTo: ["ops@example.com", "oncall@example.com"],
      region: "ap-northeast-2",
    });
  });

  test("never echoes the Slack token in an error", () => {
    const token = "xoxb-this-is-secret";
    expect(issuesOf({ SLACK_BOT_TOKEN: token, PORT: "x" }).join("\n")).not.toContain(token);
  });

  test("with ENABLED_CHANNELS=log runs on embedded defaults", () => {
    const c = loadProcessorConfig({ ENABLED_CHANNELS: "log" });
    expect(c).toMatchObject({
      groupId: "fanda-processor",
      createTopics: false,
      host: "0.0.0.0",
      port: 8080,
      channels: ["log"],
      channelSettings: { log: {} },
      maxAttempts: 5,
      retryBaseMs: 200,
      retryMaxMs: 30000,
      shutdownTimeoutMs: 25000,
      logLevel: "info",
    });
    expect(c.kafka.topic).toBe("fanda-notifications");
  });

  test("reads ENABLED_CHANNELS as a trimmed, de-duplicated, case-insensitive list", () => {
    const c = loadProcessorConfig({
      ENABLED_CHANNELS: " Webhook, log ,webhook",
      WEBHOOK_URL: "https://hooks.example.com/x",
    });
    expect(c.channels).toEqual(["webhook", "log"]);
    expect(c.channelSettings.webhook).toEqual({
      url: "https://hooks.example.com/x",
      timeoutMs: 5000,
    });
  });

  test.each([
    [
      { ENABLED_CHANNELS: "log,pager" },
      "ENABLED_CHANNELS: unknown channel(s) pager; available: log, webhook, slack, email",
    ],
    [{ ENABLED_CHANNELS: ",," }, "ENABLED_CHANNELS: no channel given"],
    [
      { ENABLED_CHANNELS: "webhook" },
      "WEBHOOK_URL: is required when ENABLED_CHANNELS includes webhook",
    ],
    [{ WEBHOOK_URL: "ftp://x" }, "WEBHOOK_URL: expected an http:// or https:// URL"],
    [{ WEBHOOK_URL: "not a url" }, "WEBHOOK_URL: expected an http:// or https:// URL"],
    [{ PORT: "http" }, "PORT: expected a port number"],
    [{ PORT: "-1" }, "PORT: expected a port between 0 and 65535"],
    [{ DELIVERY_MAX_ATTEMPTS: "0" }, "DELIVERY_MAX_ATTEMPTS: expected at least 1"],
    [{ DELIVERY_MAX_ATTEMPTS: "2.5" }, "DELIVERY_MAX_ATTEMPTS: expected a whole number"],
    [{ RETRY_BASE_MS: "500", RETRY_MAX_MS: "100" }, "RETRY_MAX_MS: must be >= RETRY_BASE_MS"],
    [
      { KAFKA_SESSION_TIMEOUT_MS: "1000" },
      "KAFKA_SESSION_TIMEOUT_MS: expected at least 6000 (the broker's group.min.session.timeout.ms)",
    ],
    [
      { REDIS_URL: "localhost:6379" },
      "REDIS_URL: expected redis://host:port or rediss://user:password@host:port",
    ],
    [
      { MYSQL_URL: "mysql://root@127.0.0.1:3306" },
      "MYSQL_URL: expected mysql://user:password@host:port/database",
    ],
    [{ PAUSE_MIN_MS: "5000", PAUSE_MAX_MS: "1000" }, "PAUSE_MAX_MS: must be >= PAUSE_MIN_MS"],
    [
      { IDEMPOTENCY_CLAIM_TTL_MS: "600000", IDEMPOTENCY_DONE_TTL_MS: "1000" },
      "IDEMPOTENCY_DONE_TTL_MS: must be >= IDEMPOTENCY_CLAIM_TTL_MS",
    ],
    [{ IDEMPOTENCY_FAIL_OPEN: "maybe" }, "IDEMPOTENCY_FAIL_OPEN: expected true or false"],
    [{ IDEMPOTENCY_OWNER_TTL_MS: "500" }, "IDEMPOTENCY_OWNER_TTL_MS: expected at least 1000"],
    [
      { IDEMPOTENCY_OWNER_TTL_MS: "soon" },
      "IDEMPOTENCY_OWNER_TTL_MS: expected a whole number (IDEMPOTENCY_OWNER_TTL_MS)",
    ],
    [
      { ROUTING_RULES: "{", ROUTING_FILE: "/x" },
      "ROUTING_FILE: set either ROUTING_RULES or ROUTING_FILE, not both",
    ],
    [{ SLACK_BOT_TOKEN: "abc" }, "SLACK_BOT_TOKEN: expected a Slack bot token (xoxb-…)"],
    [
      { SLACK_API_URL: "http://127.0.0.1:1/api" },
      "SLACK_API_URL: must end with / (e.g. https://slack.com/api/)",
    ],
    [{ SLACK_RATE_PER_SECOND: "0" }, "SLACK_RATE_PER_SECOND: expected > 0"],
    [{ SLACK_RATE_PER_SECOND: "10001" }, "SLACK_RATE_PER_SECOND: expected at most 10000"],
    [{ SLACK_BURST: "10001" }, "SLACK_BURST: expected at most 10000"],
    [{ SLACK_RETRY_AFTER_MAX_MS: "0" }, "SLACK_RETRY_AFTER_MAX_MS: expected at least 1"],
    [
      { SLACK_RETRY_AFTER_MAX_MS: "soon" },
      "SLACK_RETRY_AFTER_MAX_MS: expected a whole number (SLACK_RETRY_AFTER_MAX_MS)",
    ],
    [{ SLACK_DIGEST: "sometimes" }, "SLACK_DIGEST: expected true or false"],
    [{ SLACK_DIGEST_MAX: "1" }, "SLACK_DIGEST_MAX: expected at least 2"],
    [{ SLACK_DIGEST_MAX: "1001" }, "SLACK_DIGEST_MAX: expected at most 1000"],
    [{ SLACK_DIGEST_MAX: "many" }, "SLACK_DIGEST_MAX: expected a whole number (SLACK_DIGEST_MAX)"],
    [{ SES_FROM: "not-an-address" }, "SES_FROM: expected an email address"],
    [{ EMAIL_TO: "a@example.com, nope" }, 'EMAIL_TO: "nope" is not an email address'],
    [{ SES_MAX_SEND_RATE: "-1" }, "SES_MAX_SEND_RATE: expected > 0"],
    [
      { WEBHOOK_SECRET: "whsec_c2hvcnQ=" },
      "WEBHOOK_SECRET: the secret is a 5-byte key; expected 24 to 64 bytes",
    ],
    [{ KAFKA_CREATE_TOPICS: "sometimes" }, "KAFKA_CREATE_TOPICS: expected true or false"],
    [
      { KAFKA_GROUP_ID: "my group" },
      "KAFKA_GROUP_ID: expected a consumer group id ([A-Za-z0-9._-])",
    ],
  ])("rejects %p", (env, message) => {
    expect(issuesOf(env)).toContain(message);
  });

  test("reports every problem at once", () => {
    expect(
      issuesOf({ KAFKA_AUTH: "iam", ENABLED_CHANNELS: "webhook", PORT: "x", LOG_LEVEL: "trace" }),
    ).toHaveLength(4);
  });

  test("reads routing rules from ROUTING_RULES and checks them against the enabled channels", () => {
    const c = loadProcessorConfig({
      ENABLED_CHANNELS: "log",
      ROUTING_RULES: '{"categories":{"negative":{"channels":["log"]}}}',
    });
    expect(c.routing?.categories.negative?.channels).toEqual(["log"]);
    expect(() =>
      loadProcessorConfig({
        ENABLED_CHANNELS: "log",
        ROUTING_RULES: '{"categories":{"negative":{"channels":["webhook"]}}}',
      }),
    ).toThrow(/webhook is not in ENABLED_CHANNELS/);
    expect(() => loadProcessorConfig({ ENABLED_CHANNELS: "log", ROUTING_RULES: "[" })).toThrow(
      /ROUTING_RULES: not valid JSON/,
    );
  });

  test("reads routing rules from ROUTING_FILE, naming a missing file", async () => {
    const path = `${require("node:os").tmpdir()}/fanda-routing-${crypto.randomUUID()}.json`;
    await Bun.write(path, '{"default":{"channels":["log"]}}');
    expect(
      loadProcessorConfig({ ENABLED_CHANNELS: "log", ROUTING_FILE: path }).routing?.default
        ?.channels,
    ).toEqual(["log"]);
    expect(() =>
      loadProcessorConfig({ ENABLED_CHANNELS: "log", ROUTING_FILE: `${path}.missing` }),
    ).toThrow(/ROUTING_FILE: cannot read .* \(ENOENT\)/);
  });

  test("checks routing targets: email recipients and Slack channels", () => {
    const rules = JSON.stringify({
      categories: {
        negative: {
          channels: ["email", "slack"],
          targets: { email: { to: ["ok@example.com", "broken"] }, slack: { channel: "" } },
        },
        positive: { channels: ["email"], targets: { email: { to: [] } } },
      },
    });
    const issues = issuesOf({
      ENABLED_CHANNELS: "email,slack",
      SLACK_BOT_TOKEN: "xoxb-1",
      SES_FROM: "fanda@example.com",
      AWS_REGION: "eu-west-1",
      ROUTING_RULES: rules,
    });
    expect(issues).toEqual([
      'routing negative.targets.email.to: "broken" is not an email address',
      "routing negative.targets.slack.channel: expected a channel name",
      "routing positive.targets.email.to: expected a non-empty list of addresses",
    ]);
  });

  test("defaults to embedded stores: memory idempotency and a SQLite delivery log", () => {
    const c = loadProcessorConfig({ ENABLED_CHANNELS: "log" });
    expect(c.redisUrl).toBeUndefined();
    expect(c.mysqlUrl).toBeUndefined();
    expect(c.sqlitePath).toBe("fanda-deliveries.sqlite");
    expect(c.idempotencyFailOpen).toBe(false);
    expect(c.sessionTimeoutMs).toBe(30000);
  });
});

describe("the in-memory idempotency store", () => {
  test("is bounded: IDEMPOTENCY_MEMORY_MAX_KEYS (default 100000), a malformed value is named", () => {
    expect(loadProcessorConfig({ ENABLED_CHANNELS: "log" }).memoryMaxKeys).toBe(100_000);
    expect(
      loadProcessorConfig({ ENABLED_CHANNELS: "log", IDEMPOTENCY_MEMORY_MAX_KEYS: "5000" })
        .memoryMaxKeys,
    ).toBe(5000);
    for (const bad of ["abc", "0", "-3", "1.5"]) {
      expect(() =>
        loadProcessorConfig({ ENABLED_CHANNELS: "log", IDEMPOTENCY_MEMORY_MAX_KEYS: bad }),
      ).toThrow(/IDEMPOTENCY_MEMORY_MAX_KEYS/);
    }
  });

  test("is refused in Kubernetes or with NODE_ENV=production unless explicitly allowed; REDIS_URL is then required", () => {
    for (const marker of [{ KUBERNETES_SERVICE_HOST: "10.0.0.1" }, { NODE_ENV: "production" }]) {
      expect(() => loadProcessorConfig({ ENABLED_CHANNELS: "log", ...marker })).toThrow(
        /REDIS_URL: required/,
      );
      expect(
        loadProcessorConfig({ ENABLED_CHANNELS: "log", ...marker, REDIS_URL: "redis://r:6379" })
          .redisUrl,
      ).toBe("redis://r:6379");
      expect(
        loadProcessorConfig({ ENABLED_CHANNELS: "log", ...marker, IDEMPOTENCY_IN_MEMORY: "true" })
          .redisUrl,
      ).toBeUndefined();
    }
    expect(() =>
      loadProcessorConfig({ ENABLED_CHANNELS: "log", IDEMPOTENCY_IN_MEMORY: "maybe" }),
    ).toThrow(/IDEMPOTENCY_IN_MEMORY/);
  });
});
