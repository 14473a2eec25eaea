import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import type { KafkaMessage } from "kafkajs";
import { createFinalAhead } from "./final-ahead.ts";

const message = (offset: string, timestamp = "1700000000000", key: string | null = "k") =>
  ({
    offset,
    timestamp,
    key: key === null ? null : Buffer.from(key),
    value: Buffer.from("{}"),
    attributes: 0,
    headers: {},
  }) as KafkaMessage;

describe("final messages ahead of a not-final one", () => {
  test("a remembered message is final on the next pass, until its offset is resolved", () => {
    const ahead = createFinalAhead();
    ahead.remember(0, message("5"));
    expect(ahead.isFinal(0, message("5"))).toBe(true);
    expect(ahead.isFinal(0, message("6"))).toBe(false);
    expect(ahead.isFinal(1, message("5"))).toBe(false); // another partition
    ahead.forget(0, "5");
    expect(ahead.isFinal(0, message("5"))).toBe(false);
    expect(ahead.size()).toBe(0);
  });

  test("a different message at a remembered offset (the topic made again) is not skipped", () => {
    const ahead = createFinalAhead();
    ahead.remember(0, message("5", "1700000000000", "reports/a.pdf"));
    expect(ahead.isFinal(0, message("5", "1700000009999", "reports/a.pdf"))).toBe(false);
    expect(ahead.isFinal(0, message("5", "1700000000000", "reports/b.pdf"))).toBe(false);
    expect(ahead.isFinal(0, message("5", "1700000000000", null))).toBe(false);
  });

  test("any key bytes and offsets: only the remembered message itself is final (property)", () => {
    fc.assert(
      fc.property(
        fc.nat({ max: 7 }),
        fc.bigInt({ min: 0n, max: 2n ** 62n }),
        fc.option(fc.string(), { nil: null }),
        fc.option(fc.string(), { nil: null }),
        (partition, offset, key, otherKey) => {
          const ahead = createFinalAhead();
          const m = message(String(offset), "1", key);
          ahead.remember(partition, m);
          expect(ahead.isFinal(partition, m)).toBe(true);
          const other = message(String(offset), "1", otherKey);
          expect(ahead.isFinal(partition, other)).toBe(key === otherKey);
          ahead.forget(partition, String(offset));
          expect(ahead.size()).toBe(0);
        },
      ),
    );
  });
});
