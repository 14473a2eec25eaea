/** The entry points as an operator runs them: exit codes and messages for bad configuration. */
import { describe, expect, test } from "bun:test";
import { startSlackServer } from "../../scripts/slack-server.ts";
import { runCommand } from "../../test/support/local.ts";

/** Runs `bun <args>` with only PATH and `env`, as a fresh process sees it. */
const run = (args: string[], env: Record<string, string>) =>
  runCommand(["bun", ...args], { env: { PATH: process.env.PATH ?? "", ...env } });

describe("entry points", () => {
  test("the processor exits 2 and lists every bad variable at once", async () => {
    const { code, stderr } = await run(["processor/src/main.ts"], {
      KAFKA_AUTH: "kerberos",
      PORT: "eighty",
      ENABLED_CHANNELS: "log,pager",
      REDIS_URL: "localhost",
    });
    expect(code).toBe(2);
    for (const name of ["KAFKA_AUTH", "PORT", "ENABLED_CHANNELS", "REDIS_URL"]) {
      expect(stderr).toContain(`${name}:`);
    }
  });

  test("the ingest exits 2 on bad configuration", async () => {
    const { code, stderr } = await run(["producer/src/server.ts"], { PRODUCER_PORT: "-5" });
    expect(code).toBe(2);
    expect(stderr).toContain("PRODUCER_PORT:");
  });

  test.each([
    [["--from", "s3"], "--from: expected dlq or log"],
    [["--reason", "bored"], "--reason: unknown reason bored"],
    [["--since", "yesterday"], "--since: expected an ISO 8601 time"],
    [["--limit", "0"], "--limit: expected a positive integer"],
    [
      ["--from", "log", "--reason", "delivery-failed"],
      "--reason and --until apply to --from dlq only",
    ],
  ])("replay refuses %p with exit 2", async (args, message) => {
    const { code, stderr } = await run(["scripts/replay.ts", ...args], {});
    expect(code).toBe(2);
    expect(stderr).toContain(message);
  });

  test("the Slack token never appears in the processor's output, even when Slack refuses it", async () => {
    const slack = startSlackServer({ token: "xoxb-the-right-one" });
    try {
      const token = "xoxb-0000000000-SECRET-must-not-leak";
      const { code, stdout, stderr } = await run(["processor/src/main.ts"], {
        ENABLED_CHANNELS: "slack",
        SLACK_BOT_TOKEN: token,
        SLACK_API_URL: slack.apiUrl,
        SLACK_DEFAULT_CHANNEL: "#uploads",
        AUDIT_SQLITE_PATH: ":memory:",
        LOG_LEVEL: "debug",
      });
      expect(code).toBe(1);
      expect(`${stdout}${stderr}`).toContain("invalid_auth");
      expect(`${stdout}${stderr}`).not.toContain(token);
      expect(`${stdout}${stderr}`).not.toContain("SECRET-must-not-leak");
    } finally {
      await slack.stop();
    }
  });
});
