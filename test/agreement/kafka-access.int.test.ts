/**
 * Re-records what each component asks Kafka for (scripts/kafka-access.ts, against the local
 * stack's broker and its audit log) and fails when the committed record says otherwise: a code
 * change that adds a Kafka call, or stops making one, shows up here before it fails in AWS.
 */
import { test } from "bun:test";
import { recordKafkaAccess } from "../../scripts/kafka-access.ts";
import { diffRecords, loadRecord, RECORD_PATH, RERECORD_COMMAND } from "./kafka-access.ts";

test("the committed Kafka access record is what the code asks the broker for", async () => {
  const { record } = await recordKafkaAccess();
  const diff = diffRecords(loadRecord(), record);
  if (diff.length > 0) {
    throw new Error(
      `${RECORD_PATH} differs from what the code asks Kafka for now:\n  ${diff.join("\n  ")}\n` +
        `Re-record: ${RERECORD_COMMAND}, review and commit the record, and make the role ` +
        "policies in infra/ follow (test/agreement/kafka-access.test.ts checks them).",
    );
  }
}, 180_000);
