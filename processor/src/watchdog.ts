/**
 * Event loop watchdog: a timer that should tick every `intervalMs`. When it comes late, the
 * loop was blocked (a CPU-bound bug, a sync call, GC thrash). /healthz fails while the loop
 * has not ticked for `stallMs`, so Kubernetes restarts a process that is alive but wedged.
 */
import { ConfigError } from "./errors.ts";

/** The watchdog. */
export interface Watchdog {
  stop(): void;
  /** How long since the last tick beyond its schedule, in ms (0 when on time). */
  stalledMs(): number;
  /** Whether the loop is wedged now (stalled longer than the threshold). */
  wedged(): boolean;
  /** Largest lateness seen since the last call, in ms (for a gauge). */
  takeMaxLateMs(): number;
}

/**
 * Starts the watchdog.
 * @throws ConfigError for a non-positive interval or a threshold under the interval
 */
export function startWatchdog(
  options: { intervalMs?: number; stallMs?: number; now?: () => number } = {},
): Watchdog {
  const intervalMs = options.intervalMs ?? 500;
  const stallMs = options.stallMs ?? 30_000;
  if (!(intervalMs > 0) || !(stallMs > intervalMs)) {
    throw new ConfigError("watchdog", [
      "LIVENESS_STALL_MS: expected more than the watchdog interval",
    ]);
  }
  const now = options.now ?? Date.now;
  let last = now();
  let maxLate = 0;
  const timer = setInterval(() => {
    const t = now();
    maxLate = Math.max(maxLate, t - last - intervalMs);
    last = t;
  }, intervalMs);
  timer.unref?.();
  const stalledMs = () => Math.max(0, now() - last - intervalMs);
  return {
    stop: () => clearInterval(timer),
    stalledMs,
    wedged: () => stalledMs() >= stallMs,
    takeMaxLateMs() {
      const v = Math.max(maxLate, stalledMs());
      maxLate = 0;
      return Math.max(0, v);
    },
  };
}
