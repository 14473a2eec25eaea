import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { cachedLabels, createMetrics, exportedNames } from "./metrics.ts";

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

test("cachedLabels: any label values (inherited property names too) count in their own series, as uncached calls do", async () => {
  const label = fc.oneof(
    fc.constantFrom(
      "__proto__",
      "constructor",
      "toString",
      "hasOwnProperty",
      "",
      "a",
      "\u0000",
      "a\u0000",
    ),
    fc.string(),
  );
  await fc.assert(
    fc.asyncProperty(fc.array(fc.tuple(label, label), { maxLength: 20 }), async (pairs) => {
      const cached = createMetrics({ defaultMetrics: false });
      const plain = createMetrics({ defaultMetrics: false });
      const notified = cachedLabels(cached.notifications);
      for (const [channel, category] of pairs) {
        notified(channel, category).inc();
        plain.notifications.inc({ channel, category });
      }
      const values = async (m: typeof cached) =>
        (await m.notifications.get()).values
          .map((v) => JSON.stringify([v.labels.channel, v.labels.category, v.value]))
          .sort();
      expect(await values(cached)).toEqual(await values(plain));
    }),
    { numRuns: 200 },
  );
});
