import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createMetrics, exportedNames, HEAP_SPACE_METRICS } from "./metrics.ts";

const FIXTURE = join(
  import.meta.dir,
  "..",
  "..",
  "kustomize",
  "base",
  "monitoring",
  "exported-metrics.json",
);

describe("exported metric names", () => {
  test("are the list the alert rules and the dashboard are checked against", async () => {
    const names = await exportedNames(createMetrics({ defaultMetrics: true }));
    const committed = JSON.parse(readFileSync(FIXTURE, "utf8")) as string[];
    // On a difference: write the new list to the fixture (it is this array, pretty-printed).
    expect(committed).toEqual(names);
  });

  test("leave out V8's heap spaces, whose collection walks Bun's whole heap on every scrape", async () => {
    const text = await createMetrics({ defaultMetrics: true }).registry.metrics();
    expect(text).toContain("process_resident_memory_bytes");
    expect(text).toContain("nodejs_heap_size_used_bytes");
    for (const name of HEAP_SPACE_METRICS) expect(text).not.toContain(name);
  });

  test("include the required names and every histogram's series", async () => {
    const names = await exportedNames(createMetrics({ defaultMetrics: false }));
    for (const n of ["notification_total", "notification_failed_total", "kafka_consumer_lag"])
      expect(names).toContain(n);
    const histograms = names.filter((n) => n.endsWith("_bucket")).map((n) => n.slice(0, -7));
    expect(histograms.length).toBeGreaterThan(0);
    for (const h of histograms)
      expect(names).toEqual(expect.arrayContaining([`${h}_sum`, `${h}_count`]));
  });
});
