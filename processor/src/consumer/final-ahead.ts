/**
 * Messages whose outcome is final (delivered, or dead-lettered) but whose offsets could not be
 * committed yet, because an earlier message of their batch was not final. The batch comes
 * back from that earlier message; these are skipped, not handled again (a permanent failure
 * would be sent and dead-lettered once more on every pass). Each entry goes when its offset is
 * resolved; a partition holds at most one batch's worth.
 *
 * An offset is known with the message's timestamp and key: a topic deleted and created again
 * starts its offsets over, and a different message at a remembered offset is not skipped.
 */
import type { KafkaMessage } from "kafkajs";

/** What the consumer remembers of final, unresolved messages. */
export interface FinalAhead {
  /** Whether `message` of `partition` reached its final outcome on an earlier pass. */
  isFinal(partition: number, message: KafkaMessage): boolean;
  /** `message` is final but cannot be resolved on this pass. */
  remember(partition: number, message: KafkaMessage): void;
  /** `offset` of `partition` was resolved: it will not come back. */
  forget(partition: number, offset: string): void;
  /** Messages remembered, over all partitions. */
  size(): number;
}

const fingerprint = (m: KafkaMessage) =>
  `${m.timestamp}:${m.key == null ? "-" : `+${m.key.toString("base64")}`}`;

/** Creates an empty memory. */
export function createFinalAhead(): FinalAhead {
  const known = new Map<number, Map<string, string>>();
  return {
    isFinal: (partition, message) =>
      known.get(partition)?.get(message.offset) === fingerprint(message),
    remember(partition, message) {
      let offsets = known.get(partition);
      if (!offsets) {
        offsets = new Map();
        known.set(partition, offsets);
      }
      offsets.set(message.offset, fingerprint(message));
    },
    forget(partition, offset) {
      const offsets = known.get(partition);
      if (!offsets?.delete(offset) || offsets.size > 0) return;
      known.delete(partition);
    },
    size: () => [...known.values()].reduce((n, offsets) => n + offsets.size, 0),
  };
}
