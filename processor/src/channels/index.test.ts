import { describe, expect, test } from "bun:test";
import type { Notification } from "../../../core/contract.ts";
import { createLogger } from "../../../core/log.ts";
import { CHANNEL_NAMES, createChannels } from "./index.ts";

const logger = createLogger({ sink: () => {} });

describe("channel registry", () => {
  test("lists every channel by name", () => {
    expect(CHANNEL_NAMES).toEqual(["log", "webhook", "slack", "email"]);
  });

  test("creates the enabled channels in order", () => {
    const channels = createChannels(["webhook", "log"], {
      env: { webhookUrl: "http://127.0.0.1:1/x", webhookTimeoutMs: 100 },
      logger,
    });
    expect(channels.map((c) => c.name)).toEqual(["webhook", "log"]);
  });

  test("webhook without a URL is a configuration error", () => {
    expect(() => createChannels(["webhook"], { env: { webhookTimeoutMs: 100 }, logger })).toThrow(
      /WEBHOOK_URL/,
    );
  });

  test("the log channel writes the notification as one JSON line", async () => {
    const lines: string[] = [];
    const [log] = createChannels(["log"], {
      env: { webhookTimeoutMs: 100 },
      logger,
      write: (l) => lines.push(l),
    });
    const n = { eventId: "e" } as Notification;
    expect(await log?.send(n, { signal: new AbortController().signal, target: {} })).toEqual({});
    expect(lines.map((l) => JSON.parse(l))).toEqual([{ channel: "log", notification: n }]);
  });
});
