import { describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { loadProcessorConfig } from "../../config.ts";
import { ConfigError } from "../../errors.ts";

const secret = (bytes = 32) => `whsec_${randomBytes(bytes).toString("base64")}`;
const base = { ENABLED_CHANNELS: "webhook" };

function issuesOf(env: Record<string, string>): string[] {
  try {
    loadProcessorConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return [...err.issues];
    throw err;
  }
  return [];
}

describe("WEBHOOK_* settings", () => {
  test("WEBHOOK_SECRET takes one or several whsec_ secrets, kept as given", () => {
    const [a, b] = [secret(), secret(64)];
    const c = loadProcessorConfig({
      ...base,
      WEBHOOK_URL: "https://hooks.example.com/x",
      WEBHOOK_SECRET: ` ${a}, ${b} `,
    });
    expect(c.channelSettings.webhook).toEqual({
      url: "https://hooks.example.com/x",
      timeoutMs: 5000,
      secret: `${a}, ${b}`,
    });
  });

  test.each([
    ["0123456789abcdef-secret", "WEBHOOK_SECRET: the secret does not start with whsec_"],
    [secret(16), "WEBHOOK_SECRET: the secret is a 16-byte key; expected 24 to 64 bytes"],
    [secret(65), "WEBHOOK_SECRET: the secret is a 65-byte key; expected 24 to 64 bytes"],
    ["whsec_not*base64*at*all*here*", "WEBHOOK_SECRET: the secret is not standard padded base64"],
    [`${secret()} whsec_AAAA`, "WEBHOOK_SECRET: secret 2 of 2 is a 3-byte key"],
  ])(
    "a malformed WEBHOOK_SECRET is a ConfigError naming it, never quoting it (%#)",
    (value, message) => {
      const issues = issuesOf({
        ...base,
        WEBHOOK_URL: "https://hooks.example.com/x",
        WEBHOOK_SECRET: value,
      });
      expect(issues).toHaveLength(1);
      expect(issues[0]?.startsWith(message)).toBe(true);
      for (const part of value.split(/[\s,]+/)) {
        if (part.length > 8) expect(issues.join("\n")).not.toContain(part.slice("whsec_".length));
      }
    },
  );

  test("a malformed WEBHOOK_SECRET is refused even with the webhook channel off", () => {
    expect(issuesOf({ ENABLED_CHANNELS: "log", WEBHOOK_SECRET: "too-short" })).toEqual([
      expect.stringMatching(/^WEBHOOK_SECRET: the secret does not start with whsec_/),
    ]);
  });

  test.each([
    [
      "http://hooks.example.com/x",
      {},
      [
        "WEBHOOK_URL: http:// is allowed only to a loopback host (127.0.0.1, ::1, localhost); use https://, or set WEBHOOK_ALLOW_HTTP=true",
      ],
    ],
    ["http://hooks.example.com/x", { WEBHOOK_ALLOW_HTTP: "true" }, []],
    [
      "http://hooks.example.com/x",
      { WEBHOOK_ALLOW_HTTP: "false" },
      [expect.stringMatching(/^WEBHOOK_URL: http:\/\/ is allowed only/)],
    ],
    ["http://127.0.0.1:8082/notify", {}, []],
    ["http://localhost:8082/notify", {}, []],
    ["http://[::1]:8082/notify", {}, []],
    ["https://hooks.example.com/x", {}, []],
    [
      "https://hooks.example.com/x",
      { WEBHOOK_ALLOW_HTTP: "sometimes" },
      ["WEBHOOK_ALLOW_HTTP: expected true or false"],
    ],
    ["ftp://hooks.example.com/x", {}, ["WEBHOOK_URL: expected an http:// or https:// URL"]],
  ])("WEBHOOK_URL %s with %p", (url, extra, expected) => {
    expect(issuesOf({ ...base, WEBHOOK_URL: url, ...extra })).toEqual(expected);
  });

  test("WEBHOOK_ALLOW_HTTP=true reaches the channel", () => {
    const c = loadProcessorConfig({
      ...base,
      WEBHOOK_URL: "http://receiver.internal/x",
      WEBHOOK_ALLOW_HTTP: "true",
    });
    expect(c.channelSettings.webhook).toMatchObject({ allowHttp: true });
  });
});
