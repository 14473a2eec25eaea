/** A small dependency-free SVG plot of a latency distribution (percentile curve). */
import { percentile } from "./stats.ts";

/**
 * Renders latency percentiles (p0…p100) as an SVG line chart, log-scaled in time.
 * @param title shown above the chart
 */
export function latencySvg(latenciesMs: readonly number[], title: string): string {
  const sorted = [...latenciesMs].sort((a, b) => a - b);
  const w = 720;
  const h = 360;
  const m = { l: 60, r: 20, t: 40, b: 50 };
  const maxMs = Math.max(1, sorted.at(-1) ?? 1);
  const y = (ms: number) =>
    m.t + (h - m.t - m.b) * (1 - Math.log10(Math.max(1, ms)) / Math.log10(maxMs * 1.2));
  const x = (p: number) => m.l + ((w - m.l - m.r) * p) / 100;
  const points = Array.from({ length: 201 }, (_, i) => i / 2).map(
    (p) => `${x(p).toFixed(1)},${y(percentile(sorted, p)).toFixed(1)}`,
  );
  const ticks = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000].filter(
    (t) => t <= maxMs * 1.2,
  );
  const marks = [50, 95, 99].map((p) => ({ p, v: percentile(sorted, p) }));
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" font-family="sans-serif" font-size="12">
<title>${title}</title>
<rect width="${w}" height="${h}" fill="white"/>
<text x="${w / 2}" y="22" text-anchor="middle" font-size="14">${title}</text>
${ticks.map((t) => `<line x1="${m.l}" x2="${w - m.r}" y1="${y(t).toFixed(1)}" y2="${y(t).toFixed(1)}" stroke="#eee"/><text x="${m.l - 6}" y="${(y(t) + 4).toFixed(1)}" text-anchor="end">${t} ms</text>`).join("\n")}
${[0, 25, 50, 75, 90, 100].map((p) => `<text x="${x(p).toFixed(1)}" y="${h - m.b + 18}" text-anchor="middle">p${p}</text>`).join("\n")}
<polyline fill="none" stroke="#0969da" stroke-width="2" points="${points.join(" ")}"/>
${marks.map((k) => `<circle cx="${x(k.p).toFixed(1)}" cy="${y(k.v).toFixed(1)}" r="4" fill="#cf222e"/><text x="${(x(k.p) - 6).toFixed(1)}" y="${(y(k.v) - 8).toFixed(1)}" text-anchor="end">p${k.p} ${k.v} ms</text>`).join("\n")}
<text x="${w / 2}" y="${h - 12}" text-anchor="middle">percentile of ${sorted.length} events (upload → delivered)</text>
</svg>
`;
}
