import { describe, expect, test } from "bun:test";
import { sampleStatus } from "./fixtures/status.ts";
import { createHttpApp, type HttpAppOptions } from "./http.ts";
import { createMetrics } from "./metrics.ts";
import { createRecent } from "./recent.ts";
import { createRateWindow, renderStatus, type StatusSnapshot } from "./status.ts";
import { startWatchdog } from "./watchdog.ts";

/** The HTTP app of a running, joined processor on embedded stores, with `over` applied. */
const appWith = (over: Partial<HttpAppOptions>) =>
  createHttpApp({
    consumerState: () => ({ running: true, joined: true, partitions: [], paused: [] }),
    dependencies: () => ({
      idempotency: { kind: "memory", healthy: true },
      deliveryLog: { kind: "sqlite", healthy: true },
      channels: {},
    }),
    registry: createMetrics({ defaultMetrics: false }).registry,
    ...over,
  });

describe("status page", () => {
  test("shows readiness, throughput, lag per partition, channels, dead letters and recent errors", () => {
    const html = renderStatus(sampleStatus());
    expect(html).toContain("<title>Fanda processor — ready</title>");
    expect(html).toContain("12.5");
    expect(html).toContain("<td>2</td><td>1500</td><td>1480</td><td>20</td>");
    expect(html).toContain("<b>email</b>");
    expect(html).toContain("down (deferring)");
    expect(html).toContain("delivery-failed");
    expect(html).toContain("channel is down, deferring");
    expect(html).toContain("version 1.2.3");
  });

  test("says why it is not ready", () => {
    const html = renderStatus(
      sampleStatus({ ready: false, reasons: ["delivery log (mysql) unreachable"] }),
    );
    expect(html).toContain("NOT READY");
    expect(html).toContain("<li>delivery log (mysql) unreachable</li>");
  });

  test("escapes everything that comes from outside", () => {
    const evil = '<script>alert("x")</script>';
    const html = renderStatus(
      sampleStatus({
        reasons: [evil],
        recent: [
          {
            time: evil,
            level: "error",
            ns: evil,
            msg: evil,
            error: evil,
            channel: evil,
            eventId: evil,
          },
        ],
      }),
    );
    expect(html).not.toContain("<script>");
    expect(html).toContain("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;");
  });

  test("is served as HTML at /status and as JSON at /status.json, with the live readiness", async () => {
    const app = appWith({
      consumerState: () => ({ running: true, joined: false, partitions: [], paused: [] }),
      status: async ({ ready, reasons }) => sampleStatus({ ready, reasons }),
    });
    const html = await app.request("/status");
    expect(html.status).toBe(200);
    expect(html.headers.get("content-type")).toContain("text/html");
    expect(await html.text()).toContain("not a member of the consumer group");
    const json = (await (await app.request("/status.json")).json()) as StatusSnapshot;
    expect(json.ready).toBe(false);
    expect(json.topic).toBe("fanda-notifications");
  });

  test("/status is 404 when the app has no status source", async () => {
    const app = appWith({});
    expect((await app.request("/status")).status).toBe(404);
  });
});

describe("rate window", () => {
  test("reports the rate over the last minute and five minutes", async () => {
    let t = 0;
    let total = 0;
    const w = createRateWindow({ total: async () => total, now: () => t, everyMs: 5000 });
    for (let i = 0; i <= 72; i++) {
      await w.sample();
      t += 5000;
      total += i < 60 ? 50 : 100; // 10/s, then 20/s for the last minute
    }
    const r = w.rates();
    expect(r.lastMinute).toBeCloseTo(20, 0);
    expect(r.lastFiveMinutes).toBeGreaterThan(10);
    expect(r.lastFiveMinutes).toBeLessThan(20);
  });

  test("is zero before two samples", () => {
    expect(createRateWindow({ total: async () => 5 }).rates()).toEqual({
      lastMinute: 0,
      lastFiveMinutes: 0,
    });
  });
});

describe("recent problems", () => {
  test("keeps warn and error lines, newest first, and passes every line on", () => {
    const passed: string[] = [];
    const recent = createRecent(2);
    const sink = recent.sink((line) => passed.push(line));
    const line = (level: string, msg: string, extra = {}) =>
      JSON.stringify({ time: "t", level, ns: "n", msg, ...extra });
    sink(line("info", "fine"), "info");
    sink(line("warn", "first", { err: { message: "boom" }, channel: "slack" }), "warn");
    sink(line("error", "second", { eventId: "e1" }), "error");
    sink(line("error", "third"), "error");
    sink("not json", "error");
    expect(passed).toHaveLength(5);
    expect(recent.entries().map((e) => e.msg)).toEqual(["third", "second"]);
    expect(recent.entries()[1]).toMatchObject({ eventId: "e1", level: "error" });
  });
});

describe("watchdog", () => {
  test("is wedged only when the loop has not ticked for the threshold", () => {
    let t = 1_000;
    const w = startWatchdog({ intervalMs: 500, stallMs: 10_000, now: () => t });
    expect(w.wedged()).toBe(false);
    t += 5_000;
    expect(w.stalledMs()).toBe(4_500);
    expect(w.wedged()).toBe(false);
    t += 6_000;
    expect(w.wedged()).toBe(true);
    expect(w.takeMaxLateMs()).toBe(10_500);
    w.stop();
  });

  test("refuses a threshold under its interval", () => {
    expect(() => startWatchdog({ intervalMs: 1000, stallMs: 500 })).toThrow(/LIVENESS_STALL_MS/);
  });

  test("/healthz fails while the loop is wedged", async () => {
    const app = appWith({ watchdog: { wedged: () => true, stalledMs: () => 42_000 } });
    const res = await app.request("/healthz");
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({
      status: "failed",
      error: "event loop stalled for 42000 ms",
    });
  });
});
