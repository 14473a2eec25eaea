/**
 * The status page for humans (`GET /status`, and the same data as `GET /status.json`): what
 * the processor is doing, how far behind it is, how each channel fares, and what went wrong
 * lately. Everything shown is escaped: object keys and provider errors can contain anything.
 */
import type { ConsumerState } from "./consumer.ts";
import type { ChannelHealth } from "./dispatch.ts";
import type { DependencyState } from "./http.ts";
import type { PartitionLag } from "./lag.ts";
import type { RecentEntry } from "./recent.ts";
import { escapeHtml } from "./text.ts";

/** Everything the page shows. */
export interface StatusSnapshot {
  version: string;
  startedAt: string;
  now: string;
  ready: boolean;
  reasons: string[];
  topic: string;
  groupId: string;
  consumer: ConsumerState;
  lag: { at?: string; partitions: PartitionLag[]; error?: string };
  /** Deliveries per second over the last minute and five minutes. */
  throughput: { lastMinute: number; lastFiveMinutes: number };
  channels: { name: string; delivered: number; failed: number; health: ChannelHealth }[];
  deadLetters: Record<string, number>;
  dependencies: Pick<DependencyState, "idempotency" | "deliveryLog">;
  recent: RecentEntry[];
}

const esc = (v: unknown) => escapeHtml(String(v ?? ""));

const badge = (ok: boolean, yes: string, no: string) =>
  `<span class="badge ${ok ? "ok" : "bad"}">${esc(ok ? yes : no)}</span>`;

function table(head: string[], rows: string[][], empty: string): string {
  if (rows.length === 0) return `<p class="muted">${esc(empty)}</p>`;
  return `<table><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join("")}</tr></thead><tbody>${rows
    .map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join("")}</tr>`)
    .join("")}</tbody></table>`;
}

/** Renders the page; every value is escaped here. */
export function renderStatus(s: StatusSnapshot): string {
  const lagSum = s.lag.partitions.reduce((a, p) => a + p.lag, 0);
  const dlqTotal = Object.values(s.deadLetters).reduce((a, b) => a + b, 0);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="5">
<title>Fanda processor — ${s.ready ? "ready" : "NOT READY"}</title>
<style>
  body { font: 14px/1.45 system-ui, sans-serif; margin: 24px; color: #1f2328; background: #fff; }
  h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 24px 0 8px; }
  .muted { color: #57606a; } table { border-collapse: collapse; margin-bottom: 12px; }
  th, td { text-align: left; padding: 4px 10px; border-bottom: 1px solid #d0d7de; vertical-align: top; }
  .badge { padding: 1px 8px; border-radius: 10px; font-weight: 600; }
  .ok { background: #dafbe1; color: #116329; } .bad { background: #ffebe9; color: #a40e26; }
  .grid { display: grid; grid-template-columns: repeat(4, minmax(140px, 1fr)); gap: 12px; max-width: 900px; }
  .card { border: 1px solid #d0d7de; border-radius: 6px; padding: 10px; }
  .card b { display: block; font-size: 22px; } code { font-size: 12px; }
</style>
</head>
<body>
<h1>Fanda processor ${badge(s.ready, "ready", "not ready")}</h1>
<p class="muted">version ${esc(s.version)} · started ${esc(s.startedAt)} · ${esc(s.now)} · topic <code>${esc(s.topic)}</code> · group <code>${esc(s.groupId)}</code></p>
${s.reasons.length > 0 ? `<ul>${s.reasons.map((r) => `<li>${esc(r)}</li>`).join("")}</ul>` : ""}
<div class="grid">
  <div class="card"><span class="muted">delivered / s (1 min)</span><b>${esc(s.throughput.lastMinute.toFixed(1))}</b></div>
  <div class="card"><span class="muted">delivered / s (5 min)</span><b>${esc(s.throughput.lastFiveMinutes.toFixed(1))}</b></div>
  <div class="card"><span class="muted">consumer lag</span><b>${esc(lagSum)}</b></div>
  <div class="card"><span class="muted">dead letters</span><b>${esc(dlqTotal)}</b></div>
</div>
<h2>Consumer</h2>
<p>${badge(s.consumer.running, "running", "stopped")} ${badge(s.consumer.joined, "in group", "not in group")}
 partitions <code>${esc(s.consumer.partitions.join(", ") || "none")}</code>
 · idempotency ${esc(s.dependencies.idempotency.kind)} ${badge(s.dependencies.idempotency.healthy, "up", "down")}
 · delivery log ${esc(s.dependencies.deliveryLog.kind)} ${badge(s.dependencies.deliveryLog.healthy, "up", "down")}</p>
${table(
  ["partition", "high watermark", "committed", "lag"],
  s.lag.partitions.map((p) => [esc(p.partition), esc(p.high), esc(p.committed), esc(p.lag)]),
  s.lag.error ? `lag unknown: ${s.lag.error}` : "no lag measured yet",
)}
${table(
  ["paused partition", "until", "why"],
  s.consumer.paused.map((p) => [esc(p.partition), esc(p.until), esc(p.reason)]),
  "no partition is paused",
)}
<h2>Channels</h2>
${table(
  [
    "channel",
    "delivered",
    "failed",
    "state",
    "failures in a row",
    "last outcome",
    "last error",
    "provider",
  ],
  s.channels.map((c) => [
    `<b>${esc(c.name)}</b>`,
    esc(c.delivered),
    esc(c.failed),
    badge(!c.health.breakerOpen, "ok", "down (deferring)"),
    esc(c.health.consecutiveFailures),
    esc(
      c.health.lastOutcome
        ? `${c.health.lastOutcome}${c.health.lastAt ? ` at ${c.health.lastAt}` : ""}`
        : "—",
    ),
    esc(c.health.lastError ?? ""),
    `<code>${esc(c.health.provider ? JSON.stringify(c.health.provider) : "")}</code>`,
  ]),
  "no channel enabled",
)}
<h2>Dead letters</h2>
${table(
  ["reason", "since start"],
  Object.entries(s.deadLetters).map(([reason, n]) => [esc(reason), esc(n)]),
  "none since start",
)}
<h2>Recent warnings and errors</h2>
${table(
  ["time", "level", "where", "what", "error", "channel", "event"],
  s.recent
    .slice(0, 20)
    .map((e) => [
      esc(e.time),
      esc(e.level),
      esc(e.ns),
      esc(e.msg),
      esc(e.error ?? ""),
      esc(e.channel ?? ""),
      `<code>${esc(e.eventId ?? "")}</code>`,
    ]),
  "nothing since start",
)}
</body>
</html>
`;
}

/** Samples a monotonically growing total and reports its rate over recent windows. */
export function createRateWindow(options: {
  total: () => Promise<number>;
  everyMs?: number;
  now?: () => number;
}) {
  const everyMs = options.everyMs ?? 5000;
  const now = options.now ?? Date.now;
  const samples: { at: number; total: number }[] = [];
  const sample = async () => {
    samples.push({ at: now(), total: await options.total() });
    const horizon = now() - 5 * 60_000 - everyMs;
    while (samples.length > 2 && (samples[0]?.at ?? 0) < horizon) samples.shift();
  };
  const rateOver = (ms: number) => {
    const last = samples.at(-1);
    if (!last) return 0;
    const from = samples.find((s) => s.at >= last.at - ms) ?? samples[0];
    if (!from || last.at === from.at) return 0;
    return ((last.total - from.total) * 1000) / (last.at - from.at);
  };
  let timer: ReturnType<typeof setInterval> | undefined;
  return {
    sample,
    start() {
      void sample();
      timer = setInterval(() => void sample().catch(() => {}), everyMs);
      timer.unref?.();
    },
    stop: () => clearInterval(timer),
    rates: () => ({ lastMinute: rateOver(60_000), lastFiveMinutes: rateOver(5 * 60_000) }),
  };
}
