import { expect, test } from "bun:test";
import { type Kafka, KafkaJSProtocolError, type ProducerRecord } from "kafkajs";
import { createDeadLetterQueue } from "./dlq.ts";

test("the DLQ producer is replaced when the brokers lost its sequence state, and the letter goes out", async () => {
  const sent: ProducerRecord[] = [];
  let made = 0;
  const kafka = {
    producer: () => {
      const first = made++ === 0;
      return {
        connect: async () => {},
        disconnect: async () => {},
        send: async (record: ProducerRecord) => {
          if (first) {
            throw new KafkaJSProtocolError({
              message: "The broker received an out of order sequence number",
              type: "OUT_OF_ORDER_SEQUENCE_NUMBER",
              code: 45,
              retriable: false,
            } as unknown as Error);
          }
          sent.push(record);
        },
      };
    },
  } as unknown as Kafka;
  const renewed: unknown[] = [];
  const dlq = createDeadLetterQueue({ kafka, topic: "t", onRenew: (e) => renewed.push(e) });
  await dlq.connect();
  await dlq.send([
    {
      topic: "t",
      partition: 0,
      message: { key: null, value: Buffer.from("x"), offset: "7" } as never,
      reason: "invalid-message",
      error: "not JSON",
    },
  ]);
  expect(made).toBe(2);
  expect(renewed).toHaveLength(1);
  expect(sent.map((r) => r.topic)).toEqual(["t.dlq"]);
});
