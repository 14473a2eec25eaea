/**
 * The status page in a real browser: headless Chromium (Debian's package) driven by
 * playwright-core. Also writes the screenshot docs/status-page.png shows
 * (FANDA_UPDATE_SCREENSHOT=1 writes it into docs/, otherwise into .cache/).
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { join } from "node:path";
import { type Browser, chromium } from "playwright-core";
import { sampleStatus } from "./fixtures/status.ts";
import { createHttpApp } from "./http.ts";
import { createMetrics } from "./metrics.ts";

const root = join(import.meta.dir, "..", "..");
let browser: Browser;
let server: ReturnType<typeof Bun.serve>;

beforeAll(async () => {
  const app = createHttpApp({
    consumerState: () => ({
      running: true,
      joined: true,
      partitions: [0, 1, 2],
      paused: [{ partition: 2, until: "2026-11-28T01:00:04.000Z", reason: "channel-down" }],
    }),
    dependencies: () => ({
      idempotency: { kind: "redis", healthy: true },
      deliveryLog: { kind: "mysql", healthy: true },
      channels: {},
    }),
    registry: createMetrics({ defaultMetrics: false }).registry,
    status: async ({ ready, reasons }) =>
      sampleStatus({
        ready,
        reasons,
        consumer: {
          running: true,
          joined: true,
          partitions: [0, 1, 2],
          paused: [{ partition: 2, until: "2026-11-28T01:00:04.000Z", reason: "channel-down" }],
        },
      }),
  });
  server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: app.fetch });
  // CHROMIUM_PATH (e.g. the GitHub runner's Chrome), else Debian's chromium.
  const executablePath = process.env.CHROMIUM_PATH ?? Bun.which("chromium") ?? "/usr/bin/chromium";
  browser = await chromium.launch({
    executablePath,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await server?.stop(true);
});

test("renders for a human: readiness, numbers, lag, channels, dead letters, recent errors", async () => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  const res = await page.goto(`http://127.0.0.1:${server.port}/status`);
  expect(res?.status()).toBe(200);
  expect(await page.title()).toBe("Fanda processor — ready");
  expect(await page.locator(".card b").allTextContents()).toEqual(["12.5", "9.8", "30", "3"]);
  const channelRows = await page
    .locator("h2:has-text('Channels') + table tbody tr")
    .allTextContents();
  expect(channelRows.find((r) => r.startsWith("email"))).toContain("down (deferring)");
  expect(await page.locator("text=paused partition").count()).toBe(1);
  expect(await page.locator("text=channel is down, deferring").count()).toBe(1);
  const shot = process.env.FANDA_UPDATE_SCREENSHOT
    ? join(root, "docs", "status-page.png")
    : join(root, ".cache", "status-page.png");
  await page.screenshot({ path: shot, fullPage: true });
  await page.close();
}, 60_000);
