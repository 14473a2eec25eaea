/** The burst benchmark's helpers: metrics parsing, the alert evaluation through promtool, the plot. */
import { describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import fc from "fast-check";
import { firedAlerts, metricNamesOf, parseMetrics, timeSeriesSvg } from "./timeline.ts";

const root = `${import.meta.dir}/../..`;
const ruleFile = `${root}/kustomize/base/monitoring/prometheus-rule.yaml`;
const promtool = [process.env.PROMTOOL, `${root}/.cache/tools/prometheus/usr/bin/promtool`].find(
  (p): p is string => !!p && existsSync(p),
);

describe("parseMetrics", () => {
  test("keeps the wanted names' samples, keyed by series", () => {
    const text = [
      "# HELP kafka_consumer_lag_sum x",
      "# TYPE kafka_consumer_lag_sum gauge",
      'kafka_consumer_lag_sum{topic="t"} 1200',
      'fanda_end_to_end_seconds_bucket{le="+Inf",category="a"} 7',
      "process_cpu_seconds_total 3.5",
      "",
    ].join("\n");
    const got = parseMetrics(
      text,
      new Set(["kafka_consumer_lag_sum", "fanda_end_to_end_seconds_bucket"]),
    );
    expect([...got]).toEqual([
      ['kafka_consumer_lag_sum{topic="t"}', 1200],
      ['fanda_end_to_end_seconds_bucket{le="+Inf",category="a"}', 7],
    ]);
  });

  test("any text: never throws, returns only wanted names and finite values", () => {
    const wanted = new Set(["a_total", "constructor", "__proto__"]);
    fc.assert(
      fc.property(fc.string({ unit: "binary" }), (text) => {
        const got = parseMetrics(text, wanted);
        for (const [series, value] of got) {
          expect(wanted.has(/^[a-zA-Z_:][\w:]*/.exec(series)?.[0] ?? "")).toBe(true);
          expect(Number.isFinite(value)).toBe(true);
        }
      }),
    );
  });

  test("names the rules read include the processor's lag and DLQ metrics", () => {
    const names = metricNamesOf(ruleFile);
    expect(names.has("kafka_consumer_lag_sum")).toBe(true);
    expect(names.has("fanda_dlq_messages_total")).toBe(true);
  });
});

describe.skipIf(!promtool)("firedAlerts (promtool)", () => {
  test("a lag over 1,000 for three minutes fires MessageProcessingDelay after two; a quiet run fires nothing", async () => {
    const lag = Array.from({ length: 240 }, (_, i) => (i < 180 ? 5000 : 0));
    const busy = await firedAlerts(
      promtool as string,
      ruleFile,
      new Map([['kafka_consumer_lag_sum{topic="t"}', lag]]),
      240,
    );
    expect(busy.fired.map((f) => f.alert)).toEqual(["MessageProcessingDelay"]);
    expect(busy.fired[0]?.firstAt).toBe(120);
    // At 180 s the lag is 0: the last evaluation that sees it firing is 165 s.
    expect(busy.fired[0]?.lastAt).toBe(165);
    const quiet = await firedAlerts(
      promtool as string,
      ruleFile,
      new Map([['kafka_consumer_lag_sum{topic="t"}', Array(60).fill(10)]]),
      60,
    );
    expect(quiet.fired).toEqual([]);
    expect(quiet.alerts).toContain("MessageProcessingDelay");
  });
});

test("timeSeriesSvg draws one polyline per line", () => {
  const svg = timeSeriesSvg(
    [
      {
        name: "lag",
        color: "#000",
        points: [
          [0, 10],
          [1, 5],
          [2, 0],
        ],
      },
    ],
    "t",
    "uploads",
  );
  expect(svg.match(/<polyline/g)?.length).toBe(1);
  expect(svg).toContain("<title>t</title>");
});
