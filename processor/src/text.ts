/** Small helpers several processor modules need, in one place. */

/**
 * Waits `ms`, or rejects with the signal's reason as soon as `signal` aborts (at once when it
 * already has): a wait that shutdown can cut short.
 */
export const abortableSleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });

/**
 * Runs `fn` every `ms` until the returned function is called; the timer never keeps the
 * process alive. The default of every injectable `every` option.
 */
export function repeatEvery(fn: () => void, ms: number): () => void {
  const timer = setInterval(fn, ms);
  timer.unref?.();
  return () => clearInterval(timer);
}

/**
 * `promise`, or a rejection with the signal's reason as soon as `signal` aborts: the caller
 * stops waiting (shutdown) even when the work itself cannot be cancelled (an SDK call without
 * a signal); that work finishes or times out on its own, unobserved.
 */
export function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (err) => {
        signal.removeEventListener("abort", onAbort);
        reject(err);
      },
    );
  });
}

/** Escapes text for HTML element content and quoted attribute values. */
export const escapeHtml = (s: string) =>
  s
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");
