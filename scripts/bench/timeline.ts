/**
 * Helpers of the burst benchmark: a time-series SVG (same style as plot.ts, no dependencies),
 * Prometheus text parsing, and the alert rules evaluated by promtool over scraped samples.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCommand } from "../../test/support/local.ts";

/** One line of a time-series chart: [seconds, value] points. */
export interface Line {
  name: string;
  color: string;
  points: readonly (readonly [number, number])[];
}

/** Renders lines over time (linear axes, y from 0) as an SVG chart. */
export function timeSeriesSvg(lines: readonly Line[], title: string, yLabel: string): string {
  const w = 720;
  const h = 360;
  const m = { l: 70, r: 20, t: 40, b: 50 };
  const all = lines.flatMap((l) => l.points);
  const maxT = Math.max(1, ...all.map((p) => p[0]));
  const maxV = Math.max(1, ...all.map((p) => p[1])) * 1.1;
  const x = (t: number) => m.l + ((w - m.l - m.r) * t) / maxT;
  const y = (v: number) => m.t + (h - m.t - m.b) * (1 - v / maxV);
  const step = (max: number) => {
    const raw = max / 5;
    const mag = 10 ** Math.floor(Math.log10(raw));
    return ([1, 2, 5, 10].find((s) => s * mag >= raw) ?? 10) * mag;
  };
  const ticks = (max: number) => {
    const s = step(max);
    return Array.from({ length: Math.floor(max / s) + 1 }, (_, i) => i * s);
  };
  const legend = lines.map(
    (l, i) =>
      `<rect x="${m.l + 10 + i * 170}" y="${m.t + 6}" width="12" height="3" fill="${l.color}"/><text x="${m.l + 28 + i * 170}" y="${m.t + 12}">${l.name}</text>`,
  );
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" font-family="sans-serif" font-size="12">
<title>${title}</title>
<rect width="${w}" height="${h}" fill="white"/>
<text x="${w / 2}" y="22" text-anchor="middle" font-size="14">${title}</text>
${ticks(maxV)
  .map(
    (v) =>
      `<line x1="${m.l}" x2="${w - m.r}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#eee"/><text x="${m.l - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${v}</text>`,
  )
  .join("\n")}
${ticks(maxT)
  .map((t) => `<text x="${x(t).toFixed(1)}" y="${h - m.b + 18}" text-anchor="middle">${t}</text>`)
  .join("\n")}
${lines
  .map(
    (l) =>
      `<polyline fill="none" stroke="${l.color}" stroke-width="2" points="${l.points.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(" ")}"/>`,
  )
  .join("\n")}
${legend.join("\n")}
<text x="${w / 2}" y="${h - 12}" text-anchor="middle">seconds since the burst started</text>
<text x="16" y="${h / 2}" text-anchor="middle" transform="rotate(-90 16 ${h / 2})">${yLabel}</text>
</svg>
`;
}

/** Samples of a Prometheus text exposition: `name{labels}` → value, for the wanted names. */
export function parseMetrics(text: string, names: ReadonlySet<string>): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const name = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line)?.[0];
    if (!name || !names.has(name)) continue;
    const cut = line.lastIndexOf(" ");
    const value = Number(line.slice(cut + 1));
    if (Number.isFinite(value)) out.set(line.slice(0, cut), value);
  }
  return out;
}

/**
 * Every identifier in the rules' expressions: the metric names they read, plus function and
 * label names, which match no exposed sample and so cost nothing.
 */
export function metricNamesOf(ruleFile: string): Set<string> {
  const rule = Bun.YAML.parse(readFileSync(ruleFile, "utf8")) as {
    spec: { groups: { rules: { expr?: string }[] }[] };
  };
  const names = new Set<string>();
  for (const g of rule.spec.groups)
    for (const r of g.rules)
      for (const [n] of (r.expr ?? "").matchAll(/[a-zA-Z_:][\w:]*/g)) names.add(n);
  return names;
}

/** An alert promtool saw firing: its first evaluation time (s) and labels. */
export interface Fired {
  alert: string;
  firstAt: number;
  lastAt: number;
  labels: string;
}

/**
 * Evaluates the PrometheusRule's alerts over per-second samples with `promtool test rules`:
 * every alert is expected silent at every `evalEvery` seconds, and the failures promtool
 * prints are the alerts that fired (Prometheus evaluating every `evalEvery` seconds).
 * @param series `name{labels}` → a value per second (undefined: not scraped then)
 */
export async function firedAlerts(
  promtool: string,
  ruleFile: string,
  series: Map<string, (number | undefined)[]>,
  seconds: number,
  evalEvery = 15,
): Promise<{ fired: Fired[]; alerts: string[] }> {
  const rule = Bun.YAML.parse(readFileSync(ruleFile, "utf8")) as {
    spec: { groups: { rules: { alert?: string }[] }[] };
  };
  const alerts = rule.spec.groups.flatMap((g) =>
    g.rules.flatMap((r) => (r.alert ? [r.alert] : [])),
  );
  const dir = mkdtempSync(join(tmpdir(), "fanda-burst-alerts-"));
  try {
    writeFileSync(join(dir, "rules.yml"), JSON.stringify({ groups: rule.spec.groups }));
    const times = Array.from(
      { length: Math.floor(seconds / evalEvery) + 1 },
      (_, i) => i * evalEvery,
    );
    const test = {
      rule_files: ["rules.yml"],
      evaluation_interval: `${evalEvery}s`,
      tests: [
        {
          interval: "1s",
          input_series: [...series].map(([s, values]) => ({
            series: s,
            values: values.map((v) => (v === undefined ? "_" : String(v))).join(" "),
          })),
          alert_rule_test: times.flatMap((t) =>
            alerts.map((alertname) => ({ eval_time: `${t}s`, alertname, exp_alerts: [] })),
          ),
        },
      ],
    };
    writeFileSync(join(dir, "test.yml"), JSON.stringify(test));
    const run = await runCommand([promtool, "test", "rules", "test.yml"], { cwd: dir });
    const out = `${run.stdout}\n${run.stderr}`;
    if (run.code !== 0 && !out.includes("got:[")) throw new Error(`promtool failed:\n${out}`);
    const fired = new Map<string, Fired>();
    for (const chunk of out.split(/\n\s*alertname: /).slice(1)) {
      const head = /^(\w+), time: ([^,]+),/.exec(chunk);
      if (!head) continue;
      const at = durationSeconds(head[2] ?? "0s");
      for (const [, labels] of chunk.matchAll(/Labels:(\{[^}]*\})/g)) {
        const key = `${head[1]} ${labels}`;
        const f = fired.get(key);
        if (f) f.lastAt = Math.max(f.lastAt, at);
        else
          fired.set(key, { alert: head[1] ?? "", firstAt: at, lastAt: at, labels: labels ?? "" });
      }
    }
    return { fired: [...fired.values()].sort((a, b) => a.firstAt - b.firstAt), alerts };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** promtool's durations: 1h2m30s, 45s, 0s. */
function durationSeconds(d: string): number {
  let s = 0;
  for (const [, n, unit] of d.matchAll(/(\d+)(h|ms|m|s)/g)) {
    s += Number(n) * (unit === "h" ? 3600 : unit === "m" ? 60 : unit === "s" ? 1 : 0.001);
  }
  return s;
}
