import { describe, expect, test } from "bun:test";
import type { DeliveryRecord } from "../delivery-log/index.ts";
import { createOffsetLedger } from "./ledger.ts";

const record = (id: string) => ({ channel: id }) as unknown as DeliveryRecord;

describe("offset ledger", () => {
  test("a resolved offset means the next one to read, and never moves back", () => {
    const l = createOffsetLedger();
    l.resolve(0, "41");
    l.resolve(0, "9");
    l.resolve(3, 7n);
    expect(l.uncommitted()).toEqual([
      [0, 42n],
      [3, 8n],
    ]);
  });

  test("committed offsets are not offered again; later ones are", () => {
    const l = createOffsetLedger();
    l.resolve(1, "10");
    l.committed(l.uncommitted());
    expect(l.uncommitted()).toEqual([]);
    l.resolve(1, "11");
    expect(l.uncommitted()).toEqual([[1, 12n]]);
  });

  test("a rebalance forgets the partitions that moved away", () => {
    const l = createOffsetLedger();
    l.assign([0, 1]);
    l.resolve(0, "5");
    l.resolve(1, "5");
    l.assign([1, 2]);
    expect(l.uncommitted()).toEqual([[1, 6n]]);
  });

  test("a rebalance during a flush: the snapshot taken before it commits only what is still ours", () => {
    const l = createOffsetLedger();
    l.assign([0, 1]);
    l.resolve(0, "5");
    l.resolve(1, "8");
    const snapshot = l.uncommitted();
    l.assign([1]); // partition 0 moved to another member while the records were written
    expect(l.committable(snapshot)).toEqual([[1, 9n]]);
    l.committed(snapshot);
    expect(l.uncommitted()).toEqual([]);
    l.assign([0, 1]); // and came back: nothing of its old progress is committed by us
    expect(l.uncommitted()).toEqual([]);
  });

  test("a snapshot older than a commit that went further is not committed again", () => {
    const l = createOffsetLedger();
    l.resolve(0, "1");
    const old = l.uncommitted();
    l.resolve(0, "4");
    l.committed(l.uncommitted());
    expect(l.committable(old)).toEqual([]);
  });

  test("records: taken for a write, put back ahead of newer ones when the write fails", () => {
    const l = createOffsetLedger();
    l.buffer([record("a"), record("b")]);
    const taken = l.take();
    expect(l.buffered()).toBe(0);
    l.buffer([record("c")]);
    l.restore(taken);
    expect(l.take().map((r) => r.channel)).toEqual(["a", "b", "c"]);
  });
});
