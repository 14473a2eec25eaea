/**
 * The monitoring that ships with Fanda, checked offline:
 * - the alert rules pass `promtool check rules` and their unit tests (`promtool test rules`);
 * - every alert links a runbook that exists and says what it means, how to check, how to fix;
 * - every metric a rule or a dashboard panel queries is one the processor exports (or a
 *   named metric of kube-state-metrics / node-exporter / process defaults);
 * - the dashboard is valid JSON Grafana can load, and the kustomization renders.
 */
import { describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCommand } from "../../../scripts/run.ts";
import { render } from "../../../scripts/validate-manifests.ts";

const here = import.meta.dir;
const root = join(here, "..", "..", "..");
const rule = Bun.YAML.parse(readFileSync(join(here, "prometheus-rule.yaml"), "utf8")) as {
  kind: string;
  spec: {
    groups: {
      name: string;
      rules: { alert: string; expr: string; annotations: Record<string, string> }[];
    }[];
  };
};
const alerts = rule.spec.groups.flatMap((g) => g.rules);
const dashboard = JSON.parse(readFileSync(join(here, "dashboard.json"), "utf8")) as {
  uid: string;
  panels: { id: number; title: string; gridPos: object; targets: { expr: string }[] }[];
};

function promtool(): string {
  const candidates = [
    process.env.PROMTOOL,
    join(root, ".cache", "tools", "prometheus", "usr", "bin", "promtool"),
    Bun.which("promtool") ?? undefined,
  ];
  const found = candidates.find((c) => c && existsSync(c));
  if (!found)
    throw new Error(
      "promtool not found: run scripts/test, which fetches it (Debian package prometheus)",
    );
  return found;
}

/** Metrics that come from elsewhere in the cluster, by name. */
const EXTERNAL = new Set([
  "kube_pod_status_ready", // kube-state-metrics
  "node_memory_MemAvailable_bytes", // node-exporter
  "node_memory_MemTotal_bytes",
]);

const PROMQL_WORDS = new Set([
  "sum",
  "max",
  "min",
  "avg",
  "count",
  "rate",
  "increase",
  "max_over_time",
  "irate",
  "delta",
  "histogram_quantile",
  "clamp_min",
  "clamp_max",
  "vector",
  "absent",
  "by",
  "without",
  "on",
  "ignoring",
  "and",
  "or",
  "unless",
  "group_left",
  "group_right",
  "bool",
  "offset",
  "topk",
  "bottomk",
]);

/** Metric names a PromQL expression reads. */
function metricsIn(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""') // strings
    .replace(/\{[^}]*\}/g, "") // label matchers
    .replace(/\[[^\]]*\]/g, "") // ranges
    .replace(/\b(by|without|on|ignoring)\s*\([^)]*\)/g, ""); // grouping labels
  const names = stripped.match(/[a-zA-Z_:][a-zA-Z0-9_:]*/g) ?? [];
  return [...new Set(names.filter((n) => !PROMQL_WORDS.has(n) && !/^\d/.test(n) && n !== "e"))];
}

/** What the processor exports (a fixture the processor's own metrics test keeps current). */
async function exported(): Promise<Set<string>> {
  return new Set(JSON.parse(readFileSync(join(here, "exported-metrics.json"), "utf8")) as string[]);
}

describe("alert rules", () => {
  test("are a PrometheusRule with the four required alerts and the on-call additions", () => {
    expect(rule.kind).toBe("PrometheusRule");
    expect(alerts.map((a) => a.alert)).toEqual([
      "MessageProcessingDelay",
      "NotificationFailureRate",
      "KafkaConsumerLag",
      "NodeMemoryUsage",
      "ProcessorNotReady",
      "DeadLetterQueueGrowing",
      "EndToEndLatencyHigh",
      "ProcessingStalled",
      "ChannelDown",
      "ChannelMisconfigured",
      "PartitionStalled",
    ]);
  });

  test("pass promtool check rules and the promtool unit tests", async () => {
    const dir = mkdtempSync(join(tmpdir(), "fanda-rules-"));
    writeFileSync(join(dir, "rules.yml"), JSON.stringify({ groups: rule.spec.groups }, null, 2));
    writeFileSync(join(dir, "alerts.test.yml"), readFileSync(join(here, "alerts.test.yml")));
    for (const args of [
      ["check", "rules", "rules.yml"],
      ["test", "rules", "alerts.test.yml"],
    ]) {
      const {
        stdout: out,
        stderr: err,
        code,
      } = await runCommand([promtool(), ...args], { cwd: dir });
      if (code !== 0) throw new Error(`promtool ${args.join(" ")} failed:\n${out}\n${err}`);
      expect(out).toContain("SUCCESS");
    }
  }, 30_000);

  test("every alert has a runbook that says what it means, how to check and how to fix", () => {
    for (const a of alerts) {
      const url = a.annotations.runbook_url ?? "";
      expect(url).toEndWith(`/docs/runbooks/${a.alert}.md`);
      const page = readFileSync(join(root, "docs", "runbooks", `${a.alert}.md`), "utf8");
      for (const section of ["## What it means", "## How to check", "## How to fix"]) {
        expect(page).toContain(section);
      }
      expect(a.annotations.summary).toBeTruthy();
    }
  });

  test("query only metrics that exist", async () => {
    const known = await exported();
    for (const a of alerts) {
      for (const m of metricsIn(a.expr)) {
        if (!known.has(m) && !EXTERNAL.has(m))
          throw new Error(`${a.alert} queries unknown metric ${m}`);
      }
    }
  });
});

describe("dashboard", () => {
  test("is loadable Grafana JSON with unique panels, each with a query and a place", () => {
    expect(dashboard.uid).toBe("fanda-processor");
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of dashboard.panels) {
      expect(p.targets.length).toBeGreaterThan(0);
      expect(p.gridPos).toBeDefined();
    }
  });

  test("shows throughput, lag, latency percentiles, failures by channel, DLQ and pods", () => {
    const all = dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr)).join("\n");
    for (const needed of [
      "notification_total",
      "notification_failed_total",
      "kafka_consumer_lag",
      "fanda_end_to_end_seconds_bucket",
      "fanda_dlq_messages_total",
      "kube_pod_status_ready",
    ]) {
      expect(all).toContain(needed);
    }
  });

  test("queries only metrics that exist", async () => {
    const known = await exported();
    for (const p of dashboard.panels) {
      for (const t of p.targets) {
        for (const m of metricsIn(t.expr)) {
          if (!known.has(m) && !EXTERNAL.has(m))
            throw new Error(`panel "${p.title}" queries unknown metric ${m}`);
        }
      }
    }
  });

  test("the metric-name check itself catches a typo", () => {
    expect(metricsIn('sum by (channel) (rate(notificaton_total{x="y"}[5m]))')).toEqual([
      "notificaton_total",
    ]);
  });
});

describe("kustomization", () => {
  test("renders the rule and the dashboard ConfigMap for the Grafana sidecar", async () => {
    // The same rendering (and warning check) the manifest validation uses.
    const { objects, problems } = await render("base/monitoring");
    expect(problems).toEqual([]);
    expect(objects.map((o) => `${o.kind}/${o.metadata?.name}`)).toEqual([
      "ConfigMap/fanda-dashboard",
      "PrometheusRule/fanda-processor",
    ]);
    const dashboard = objects.find((o) => o.kind === "ConfigMap") as {
      metadata?: { labels?: Record<string, string> };
    };
    expect(dashboard.metadata?.labels?.grafana_dashboard).toBe("1");
  });
});
