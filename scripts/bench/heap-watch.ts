/**
 * A preload for a benchmarked process: where its memory is, every 500 ms. Appends one line per
 * sample to the file named by FANDA_HEAP_WATCH_FILE: seconds since start, RSS, the JavaScript
 * heap's live size and capacity (JavaScriptCore's own figures), memory JSC knows outside its
 * heap, array buffers, and the most numerous object types. What RSS holds beyond the heap's
 * capacity is the runtime itself: code, native buffers, allocator pages. Each sample walks the
 * heap (tens of ms at 200 MB): use it to see memory, not in runs whose CPU figures count.
 *
 *   FANDA_HEAP_WATCH_FILE=/tmp/heap.log \
 *   FANDA_BENCH_RUNTIME_ARGS="--preload ./scripts/bench/heap-watch.ts" \
 *   bun scripts/bench/pipeline.ts --events 200000 --channels webhook
 */
import { heapStats } from "bun:jsc";
import { appendFileSync } from "node:fs";

const file = process.env.FANDA_HEAP_WATCH_FILE;
if (!file) {
  console.error("heap-watch: set FANDA_HEAP_WATCH_FILE to the file to append samples to");
} else {
  const mb = (bytes: number) => (bytes / 1e6).toFixed(0);
  const started = performance.now();
  setInterval(() => {
    const heap = heapStats();
    const mem = process.memoryUsage();
    const types = Object.entries(heap.objectTypeCounts)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 6)
      .map(([name, count]) => `${name}:${count}`)
      .join(" ");
    const at = ((performance.now() - started) / 1000).toFixed(1);
    appendFileSync(
      file,
      `${at}s rss=${mb(mem.rss)} heap=${mb(heap.heapSize)} capacity=${mb(heap.heapCapacity)} extra=${mb(heap.extraMemorySize)} arrayBuffers=${mb(mem.arrayBuffers)} objects=${heap.objectCount} ${types}\n`,
    );
  }, 500).unref();
}
