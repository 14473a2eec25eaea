/** The behaviour every {@link DeliveryLog} must have, run against SQLite and MySQL. */
import { describe, expect, test } from "bun:test";
import type { Notification } from "../../../core/contract.ts";
import { aNotification } from "../../../test/support/notifications.ts";
import { COLUMN_LIMITS, type DeliveryLog, type DeliveryRecord, TRUNCATED } from "./index.ts";

const notification = (eventId: string, key = "reports/positive/실적 q3.pdf"): Notification =>
  aNotification({ eventId, key });

const id = () => crypto.randomUUID().replace(/-/g, "");
const at = (s: number) => new Date(Date.UTC(2026, 10, 27, 10, 0, s));
const record = (n: Notification, over: Partial<DeliveryRecord> = {}): DeliveryRecord => ({
  notification: n,
  channel: "webhook",
  status: "delivered",
  attempts: 1,
  firstAttemptAt: at(0),
  finishedAt: at(1),
  ...over,
});

/** Registers the suite; `open` returns a migrated, empty log. */
export function deliveryLogConformance(name: string, open: () => Promise<DeliveryLog>) {
  describe(`${name} delivery log`, () => {
    test("migrating twice is harmless", async () => {
      const log = await open();
      await log.migrate();
      expect(log.healthy()).toBe(true);
      await log.close();
    });

    test("keeps failed deliveries with their payload for replay, oldest first", async () => {
      const log = await open();
      const a = notification(id());
      const b = notification(id(), "uploads/b.txt");
      await log.write([
        record(b, { status: "failed", attempts: 5, lastError: "503", finishedAt: at(9) }),
        record(a, { status: "failed", attempts: 2, lastError: "400", finishedAt: at(5) }),
        record(a, { channel: "log" }),
      ]);
      const failed = await log.failed();
      expect(failed.map((f) => [f.notification, f.channel, f.attempts, f.lastError])).toEqual([
        [a, "webhook", 2, "400"],
        [b, "webhook", 5, "503"],
      ]);
      expect(failed[0]?.finishedAt.toISOString()).toBe(at(5).toISOString());
      expect(await log.failed({ eventId: b.eventId })).toHaveLength(1);
      expect(await log.failed({ since: at(6) })).toHaveLength(1);
      expect(await log.failed({ limit: 1 })).toHaveLength(1);
      await log.close();
    });

    test("one row per event and channel: a retry adds attempts, success clears the failure", async () => {
      const log = await open();
      const n = notification(id());
      await log.write([record(n, { status: "failed", attempts: 3, lastError: "503" })]);
      await log.write([record(n, { status: "delivered", attempts: 1, providerId: "p-1" })]);
      expect(await log.failed({ eventId: n.eventId })).toEqual([]);
      await log.close();
    });

    test("a delivered row is never downgraded by a late failure", async () => {
      const log = await open();
      const n = notification(id());
      await log.write([record(n, { providerId: "p-1" })]);
      await log.write([record(n, { status: "failed", lastError: "late" })]);
      expect(await log.failed({ eventId: n.eventId })).toEqual([]);
      await log.close();
    });

    test("one row that fits no column does not fail its batch: all 100 are written, it is normalised and its notification kept whole", async () => {
      const log = await open();
      const rows = Array.from({ length: 100 }, (_, i) =>
        record(notification(id(), `batch/${i}.txt`), { status: "failed", lastError: "503" }),
      );
      const hostile = notification(id(), `huge/${"k".repeat(2000)}`);
      hostile.uploadTime = "0001-01-01T00:00:00.000000001Z";
      hostile.category = "c".repeat(100);
      rows[57] = record(hostile, {
        status: "failed",
        channel: "w".repeat(40),
        lastError: `boom ${"e".repeat(10_000)}`,
        providerId: "x".repeat(300),
        attempts: Number.MAX_SAFE_INTEGER,
        firstAttemptAt: new Date(Number.NaN),
        finishedAt: new Date(Date.UTC(10_000, 0, 1)),
      });
      await log.write(rows);
      for (const r of rows) {
        const [f] = await log.failed({ eventId: r.notification.eventId });
        expect(f?.notification).toEqual(r.notification);
      }
      const [f] = await log.failed({ eventId: hostile.eventId });
      expect(f?.lastError?.endsWith(TRUNCATED)).toBe(true);
      expect([...(f?.lastError ?? "")]).toHaveLength(COLUMN_LIMITS.lastError);
      expect([...(f?.channel ?? "")].length).toBeLessThanOrEqual(COLUMN_LIMITS.channel);
      expect(f?.finishedAt.toISOString()).toBe("9999-12-31T23:59:59.999Z");
      await log.close();
    });

    test("a failed notification too large for its payload column is kept raw and still replayable", async () => {
      const log = await open();
      const big = notification(id(), `big/${"실".repeat(30_000)}`);
      await log.write([record(big, { status: "failed", lastError: "503" })]);
      const [f] = await log.failed({ eventId: big.eventId });
      expect(f?.notification).toEqual(big);
      await log.close();
    });

    test("delivered: per key, in order, whether a delivered row exists (failed rows and unknown keys do not count)", async () => {
      const log = await open();
      const a = notification(id());
      const b = notification(id());
      const longChannel = `channel-${"x".repeat(60)}`;
      await log.write([
        record(a, { channel: "webhook" }),
        record(a, { channel: "email", status: "failed", lastError: "503" }),
        record(b, { channel: longChannel }),
      ]);
      const keys = [
        { eventId: a.eventId, channel: "email" },
        { eventId: a.eventId, channel: "webhook" },
        { eventId: b.eventId, channel: longChannel },
        { eventId: b.eventId, channel: "webhook" },
        { eventId: a.eventId, channel: "webhook" },
        { eventId: id(), channel: "slack" },
      ];
      expect(await log.delivered(keys)).toEqual([false, true, true, false, true, false]);
      expect(await log.delivered([])).toEqual([]);
      const many = Array.from({ length: 2500 }, () => ({ eventId: id(), channel: "webhook" }));
      expect((await log.delivered([...many, keys[1] as (typeof keys)[0]])).at(-1)).toBe(true);
      await log.close();
    });

    test("writing nothing is a no-op", async () => {
      const log = await open();
      await log.write([]);
      await log.close();
    });
  });
}
