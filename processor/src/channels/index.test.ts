import { describe, expect, test } from "bun:test";
import type { Notification } from "../../../core/contract.ts";
import { createLogger } from "../../../core/log.ts";
import { CHANNEL_NAMES, CHANNEL_PLUGINS, createChannels } from "./index.ts";

const ctx = { logger: createLogger({ sink: () => {} }) };

describe("channel registry", () => {
  test("lists every channel plugin by name", () => {
    expect(CHANNEL_NAMES).toEqual(["log", "webhook", "slack", "email"]);
    for (const name of CHANNEL_NAMES) expect(CHANNEL_PLUGINS[name].name).toBe(name);
  });

  test("creates the enabled channels in order, each from its plugin's settings", () => {
    const channels = createChannels(
      ["webhook", "log"],
      { webhook: { url: "http://127.0.0.1:1/x", timeoutMs: 100 }, log: {} },
      ctx,
    );
    expect(channels.map((c) => c.name)).toEqual(["webhook", "log"]);
  });

  test("webhook without a URL is a configuration error", () => {
    expect(() => createChannels(["webhook"], { webhook: { timeoutMs: 100 } }, ctx)).toThrow(
      /WEBHOOK_URL/,
    );
  });

  test("every plugin's variables are its own: no two plugins read the same variable", () => {
    const seen = new Map<string, string>();
    for (const p of Object.values(CHANNEL_PLUGINS)) {
      for (const v of Object.keys(p.env)) {
        expect(`${v} read by ${seen.get(v) ?? p.name}`).toBe(`${v} read by ${p.name}`);
        seen.set(v, p.name);
      }
    }
    expect([...seen.keys()].some((k) => k.startsWith("SLACK_"))).toBe(true);
  });

  test("the log channel writes the notification as one JSON line", async () => {
    const lines: string[] = [];
    const [log] = createChannels(["log"], {}, { ...ctx, write: (l: string) => void lines.push(l) });
    const n = { eventId: "e" } as Notification;
    expect(await log?.send(n, { signal: new AbortController().signal, target: {} })).toEqual({});
    expect(lines.map((l) => JSON.parse(l))).toEqual([{ channel: "log", notification: n }]);
  });
});
