/**
 * The offset ledger: what this member may commit, and the delivery records that must be written
 * first. Kept apart from the batch loop so its rules can be tested without a broker:
 *
 * - an offset is resolved only after its message's outcome is final, and never moves back;
 * - records are buffered before their offsets are resolved, so a snapshot of the resolved
 *   offsets taken first is covered by the records taken right after it;
 * - a partition this member no longer owns is never committed, not even from a snapshot taken
 *   before the rebalance that moved it (its progress is its new owner's).
 */
import type { DeliveryRecord } from "../delivery-log/index.ts";

/** Partition → next offset to read, as it would be committed. */
export type OffsetSnapshot = [partition: number, offset: bigint][];

/** The ledger of one consumer. */
export interface OffsetLedger {
  /** `offset` of `partition` reached a final outcome: the next offset to read is offset + 1. */
  resolve(partition: number, offset: string | bigint): void;
  /** The partitions assigned after a rebalance: others are forgotten. */
  assign(partitions: readonly number[]): void;
  /** Resolved offsets not committed yet, for owned partitions. */
  uncommitted(): OffsetSnapshot;
  /** Of `snapshot`, what may still be committed (partitions owned now, not already past). */
  committable(snapshot: OffsetSnapshot): OffsetSnapshot;
  /** `snapshot` was committed. */
  committed(snapshot: OffsetSnapshot): void;
  /** Delivery records waiting for the next commit. */
  buffer(records: readonly DeliveryRecord[]): void;
  /** Takes every buffered record (for a write). */
  take(): DeliveryRecord[];
  /** Puts back records a write could not store, ahead of what arrived meanwhile. */
  restore(records: readonly DeliveryRecord[]): void;
  /** How many records wait. */
  buffered(): number;
}

/** Creates an empty ledger. */
export function createOffsetLedger(): OffsetLedger {
  const resolved = new Map<number, bigint>();
  const committed = new Map<number, bigint>();
  let owned: Set<number> | undefined;
  let records: DeliveryRecord[] = [];
  const isOwned = (p: number) => owned === undefined || owned.has(p);
  return {
    resolve(partition, offset) {
      const next = BigInt(offset) + 1n;
      if ((resolved.get(partition) ?? -1n) < next) resolved.set(partition, next);
    },
    assign(partitions) {
      owned = new Set(partitions);
      for (const p of [...resolved.keys()]) {
        if (!owned.has(p)) {
          resolved.delete(p);
          committed.delete(p);
        }
      }
    },
    uncommitted: () =>
      [...resolved].filter(([p, o]) => isOwned(p) && (committed.get(p) ?? -1n) < o),
    committable: (snapshot) =>
      snapshot.filter(([p, o]) => isOwned(p) && (committed.get(p) ?? -1n) < o),
    committed(snapshot) {
      for (const [p, o] of snapshot) {
        if (isOwned(p) && (committed.get(p) ?? -1n) < o) committed.set(p, o);
      }
    },
    buffer(more) {
      records.push(...more);
    },
    take() {
      const out = records;
      records = [];
      return out;
    },
    restore(back) {
      records = [...back, ...records];
    },
    buffered: () => records.length,
  };
}
