import { describe, expect, test } from "bun:test";
import { InMemorySpanExporter } from "@opentelemetry/sdk-trace";
import fc from "fast-check";
import {
  type Kafka,
  KafkaJSConnectionError,
  KafkaJSNumberOfRetriesExceeded,
  KafkaJSProtocolError,
  type Message,
  type ProducerRecord,
} from "kafkajs";
import { aNotification } from "../test/support/notifications.ts";
import { MAX_TRACE_ID_BYTES, type Notification, recordBytes } from "./contract.ts";
import { ConfigError, FandaError, InvalidInputError } from "./errors.ts";
import { createPublisher, createRenewingProducer } from "./kafka.ts";
import { extractTraceContext, newTraceContext, SpanStatusCode, startTracing } from "./tracing.ts";

/** A producer whose sends complete only when the test says so. */
function fakeKafka() {
  const sends: { record: ProducerRecord; done: PromiseWithResolvers<void> }[] = [];
  const producer = {
    connect: async () => {},
    disconnect: async () => {},
    send: (record: ProducerRecord) => {
      const done = Promise.withResolvers<void>();
      sends.push({ record, done });
      return done.promise;
    },
  };
  return { kafka: { producer: () => producer } as unknown as Kafka, sends };
}

const n = (i: number): Notification =>
  aNotification({
    eventId: i.toString(16).padStart(32, "0"),
    bucket: "bucket",
    key: `k/f${i}.pdf`,
    category: "general",
  });
const keys = (messages: Message[]) => messages.map((m) => String(m.key));
const tick = () => new Promise((r) => setTimeout(r, 0));

describe("publisher", () => {
  test("sends one call's notifications as one request, with key, value and headers", async () => {
    const { kafka, sends } = fakeKafka();
    const publisher = createPublisher({ kafka, topic: "t" });
    const done = publisher.publish([n(1), n(2)], { traceId: "tr" });
    expect(sends).toHaveLength(1);
    const record = sends[0]?.record;
    expect(record?.acks).toBe(-1);
    expect(keys(record?.messages ?? [])).toEqual(["bucket/k/f1.pdf", "bucket/k/f2.pdf"]);
    expect(record?.messages[0]?.headers).toEqual({
      "content-type": "application/json",
      "schema-version": "1",
      "trace-id": "tr",
    });
    expect(JSON.parse(String(record?.messages[0]?.value))).toEqual(n(1));
    sends[0]?.done.resolve();
    await done;
  });

  test("coalesces calls that arrive while a request is in flight, in order", async () => {
    const { kafka, sends } = fakeKafka();
    const publisher = createPublisher({ kafka, topic: "t" });
    const first = publisher.publish([n(1)]);
    const later = [publisher.publish([n(2)]), publisher.publish([n(3), n(4)])];
    expect(sends).toHaveLength(1);
    sends[0]?.done.resolve();
    await first;
    await tick();
    expect(sends).toHaveLength(2);
    expect(keys(sends[1]?.record.messages ?? [])).toEqual([
      "bucket/k/f2.pdf",
      "bucket/k/f3.pdf",
      "bucket/k/f4.pdf",
    ]);
    sends[1]?.done.resolve();
    await Promise.all(later);
  });

  test("caps a coalesced request at maxBatchMessages without splitting a call", async () => {
    const { kafka, sends } = fakeKafka();
    const publisher = createPublisher({ kafka, topic: "t", maxBatchMessages: 3 });
    const all = [
      publisher.publish([n(1)]),
      publisher.publish([n(2), n(3)]),
      publisher.publish([n(4), n(5)]),
      publisher.publish([n(6), n(7), n(8), n(9)]),
    ];
    sends[0]?.done.resolve();
    await tick();
    expect(keys(sends[1]?.record.messages ?? [])).toEqual(["bucket/k/f2.pdf", "bucket/k/f3.pdf"]);
    sends[1]?.done.resolve();
    await tick();
    expect(sends[2]?.record.messages).toHaveLength(2);
    sends[2]?.done.resolve();
    await tick();
    expect(sends[3]?.record.messages).toHaveLength(4);
    sends[3]?.done.resolve();
    await Promise.all(all);
  });

  test("a failed request rejects only the calls in it, with a retriable error", async () => {
    const { kafka, sends } = fakeKafka();
    const publisher = createPublisher({ kafka, topic: "t" });
    const first = publisher.publish([n(1)]);
    const second = publisher.publish([n(2)]);
    sends[0]?.done.reject(Object.assign(new Error("broker gone"), { retriable: true }));
    const err = await first.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FandaError);
    expect((err as FandaError).retriable).toBe(true);
    expect((err as Error).message).toContain("publishing 1 message(s) to t");
    await tick();
    sends[1]?.done.resolve();
    await second;
  });

  test("kafkajs giving up after its retries (broker unreachable) is retriable and never split", async () => {
    // What kafkajs really throws once its retrier is exhausted: a KafkaJSNumberOfRetriesExceeded,
    // whose own `retriable` is false (it will not retry again) although the cause is transient.
    const exhausted = () =>
      new KafkaJSNumberOfRetriesExceeded(
        new KafkaJSConnectionError("Connection error: connect ECONNREFUSED 127.0.0.1:9092"),
        { retryCount: 5, retryTime: 1000 },
      );
    const { kafka, sends } = fakeKafka();
    const publisher = createPublisher({ kafka, topic: "t" });
    const first = publisher.publish([n(1)]);
    const later = [publisher.publish([n(2)]), publisher.publish([n(3)])];
    const outcomes = Promise.allSettled(later);
    sends[0]?.done.reject(exhausted());
    const err = await first.catch((e: unknown) => e);
    expect((err as FandaError).retriable).toBe(true);
    await tick();
    expect(sends[1]?.record.messages).toHaveLength(2);
    sends[1]?.done.reject(exhausted());
    const settled = await outcomes;
    await tick();
    // Not re-sent call by call: each re-send would wait through kafkajs's retries again.
    expect(sends).toHaveLength(2);
    for (const o of settled) {
      expect(o.status).toBe("rejected");
      expect(((o as PromiseRejectedResult).reason as FandaError).retriable).toBe(true);
    }
  });

  test("an invalid notification is refused before anything is sent", async () => {
    const { kafka, sends } = fakeKafka();
    const publisher = createPublisher({ kafka, topic: "t" });
    await expect(publisher.publish([{ ...n(1), s3Url: "http://x" }])).rejects.toThrow(/s3Url/);
    expect(sends).toHaveLength(0);
  });

  const refused = () => Object.assign(new Error("MESSAGE_TOO_LARGE"), { retriable: false });

  test("a request refused for good is re-sent call by call, so only the bad call fails", async () => {
    const { kafka, sends } = fakeKafka();
    const publisher = createPublisher({ kafka, topic: "t" });
    const first = publisher.publish([n(1)]);
    const [a, b, c] = [
      publisher.publish([n(2)]),
      publisher.publish([n(3)]),
      publisher.publish([n(4)]),
    ];
    const bFailure = b.catch((e: unknown) => e);
    sends[0]?.done.resolve();
    await first;
    await tick();
    expect(sends[1]?.record.messages).toHaveLength(3);
    sends[1]?.done.reject(refused());
    await tick();
    expect(keys(sends[2]?.record.messages ?? [])).toEqual(["bucket/k/f2.pdf"]);
    sends[2]?.done.resolve();
    await tick();
    expect(keys(sends[3]?.record.messages ?? [])).toEqual(["bucket/k/f3.pdf"]);
    sends[3]?.done.reject(refused());
    await tick();
    expect(keys(sends[4]?.record.messages ?? [])).toEqual(["bucket/k/f4.pdf"]);
    sends[4]?.done.resolve();
    await a;
    const err = await bFailure;
    expect(err).toBeInstanceOf(FandaError);
    expect((err as FandaError).retriable).toBe(false);
    await c;
    expect(sends).toHaveLength(5);
  });

  test("a message over maxMessageBytes is refused before it is queued, alone", async () => {
    const { kafka, sends } = fakeKafka();
    const publisher = createPublisher({ kafka, topic: "t", maxMessageBytes: 2048 });
    const ok = publisher.publishRaw([{ key: "a", value: "small" }]);
    const big = publisher.publishRaw([{ key: "b", value: "x".repeat(2048) }]);
    await expect(big).rejects.toThrow(InvalidInputError);
    await expect(big).rejects.toThrow(/over the topic's limit of 2048/);
    sends[0]?.done.resolve();
    await ok;
    expect(sends).toHaveLength(1);
  });

  test("coalesced requests stay within maxMessageBytes", async () => {
    const { kafka, sends } = fakeKafka();
    const one = recordBytes({
      key: "bucket/k/f1.pdf",
      value: JSON.stringify(n(1)),
      headers: { "content-type": "application/json", "schema-version": "1", "trace-id": "t" },
    });
    const publisher = createPublisher({ kafka, topic: "t", maxMessageBytes: one * 2 + 10 });
    const calls = [1, 2, 3, 4, 5].map((i) => publisher.publish([n(i)], { traceId: "t" }));
    for (let i = 0; i < 3; i++) {
      sends[i]?.done.resolve();
      await tick();
    }
    expect(sends.map((s) => s.record.messages.length)).toEqual([1, 2, 2]);
    await Promise.all(calls);
  });

  test("a call larger than maxMessageBytes goes out in consecutive requests", async () => {
    const { kafka, sends } = fakeKafka();
    const publisher = createPublisher({ kafka, topic: "t", maxMessageBytes: 1200 });
    let done = false;
    const call = publisher.publishRaw(
      [1, 2, 3].map((i) => ({ key: `k${i}`, value: "v".repeat(500) })),
    );
    void call.then(() => {
      done = true;
    });
    for (let i = 0; i < 3; i++) {
      expect(done).toBe(false);
      expect(keys(sends[i]?.record.messages ?? [])).toEqual([`k${i + 1}`]);
      sends[i]?.done.resolve();
      await tick();
    }
    await call;
  });

  test("refuses a trace id longer than the contract allows", async () => {
    const { kafka, sends } = fakeKafka();
    const publisher = createPublisher({ kafka, topic: "t" });
    await expect(
      publisher.publish([n(1)], { traceId: "t".repeat(MAX_TRACE_ID_BYTES + 1) }),
    ).rejects.toThrow(InvalidInputError);
    expect(sends).toHaveLength(0);
  });

  test.each([0, 100, 1.5])("refuses maxMessageBytes %p", (maxMessageBytes) => {
    expect(() =>
      createPublisher({ kafka: fakeKafka().kafka, topic: "t", maxMessageBytes }),
    ).toThrow(ConfigError);
  });

  test.each([-1, 1.5, Number.NaN])("refuses unknownTopicForMs %p", (unknownTopicForMs) => {
    expect(() =>
      createPublisher({ kafka: fakeKafka().kafka, topic: "t", unknownTopicForMs }),
    ).toThrow(/unknownTopicForMs/);
  });

  test("refuses a non-positive batch cap", () => {
    expect(() =>
      createPublisher({ kafka: fakeKafka().kafka, topic: "t", maxBatchMessages: 0 }),
    ).toThrow(/maxBatchMessages/);
  });
});

describe("publisher (property)", () => {
  /** A broker that refuses for good any request with a "bad" message, after a turn. */
  function refusingKafka() {
    const requests: Message[][] = [];
    const producer = {
      connect: async () => {},
      disconnect: async () => {},
      send: async (record: ProducerRecord) => {
        await tick();
        requests.push(record.messages);
        if (record.messages.some((m) => String(m.value).startsWith("bad"))) {
          throw Object.assign(new Error("INVALID_RECORD"), { retriable: false });
        }
      },
    };
    return { kafka: { producer: () => producer } as unknown as Kafka, requests };
  }

  const aMessage = fc.record({
    bad: fc.boolean(),
    size: fc.oneof(fc.integer({ min: 1, max: 1500 }), fc.constant(5000)),
  });

  test("each call's outcome is its own: it fails only for its own messages", async () => {
    const maxMessageBytes = 4096;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(aMessage, { minLength: 1, maxLength: 4 }), {
          minLength: 1,
          maxLength: 12,
        }),
        fc.integer({ min: 1, max: 5 }),
        async (calls, maxBatchMessages) => {
          const { kafka, requests } = refusingKafka();
          const publisher = createPublisher({
            kafka,
            topic: "t",
            maxMessageBytes,
            maxBatchMessages,
          });
          const outcomes = await Promise.allSettled(
            calls.map((messages, c) =>
              publisher.publishRaw(
                messages.map((m, i) => ({
                  key: `c${c}-m${i}`,
                  value: (m.bad ? "bad" : "ok-").padEnd(m.size, "x"),
                })),
              ),
            ),
          );
          calls.forEach((messages, c) => {
            const oversized = messages.some(
              (m) => recordBytes({ key: "c0-m0", value: "x".repeat(m.size) }) > maxMessageBytes,
            );
            const refused = messages.some((m) => m.bad);
            const outcome = outcomes[c];
            expect(outcome?.status).toBe(oversized || refused ? "rejected" : "fulfilled");
            if (oversized) {
              expect((outcome as PromiseRejectedResult).reason).toBeInstanceOf(InvalidInputError);
            }
          });
          for (const request of requests) {
            const bytes = request.reduce((sum, m) => sum + recordBytes(m), 0);
            expect(bytes <= maxMessageBytes || request.length === 1).toBe(true);
          }
          // What a call resolved for was acknowledged, and nothing was acknowledged twice.
          const acknowledged = requests
            .filter((r) => !r.some((m) => String(m.value).startsWith("bad")))
            .flatMap((r) => r.map((m) => String(m.key)));
          expect(new Set(acknowledged).size).toBe(acknowledged.length);
          calls.forEach((messages, c) => {
            if (outcomes[c]?.status !== "fulfilled") return;
            for (const i of messages.keys()) expect(acknowledged).toContain(`c${c}-m${i}`);
          });
        },
      ),
      { numRuns: 150 },
    );
  });
});

describe("publisher: trace context headers", () => {
  test("each message carries the traceparent of its own publish span, under its context", async () => {
    const exporter = new InMemorySpanExporter();
    const tracing = await startTracing(
      { serviceName: "t", sampler: "parentbased_always_on", samplerRatio: 1 },
      { exporter },
    );
    try {
      const { kafka, sends } = fakeKafka();
      const publisher = createPublisher({ kafka, topic: "t" });
      const a = "0af7651916cd43dd8448eb211c80319c";
      const state = `vendor=${"x".repeat(600)}`;
      const contexts = [
        extractTraceContext({ traceparent: `00-${a}-b7ad6b7169203331-01`, tracestate: "k=v" }),
        extractTraceContext({ traceparent: `00-${a}-b7ad6b7169203331-01`, tracestate: state }),
        newTraceContext(),
      ];
      const done = publisher.publish([n(1), n(2), n(3)], { traceId: "tr", contexts });
      const messages = sends[0]?.record.messages ?? [];
      const parents = messages.map((m) => String(m.headers?.traceparent));
      expect(parents[0]).toMatch(new RegExp(`^00-${a}-[0-9a-f]{16}-01$`));
      expect(parents[1]).toMatch(new RegExp(`^00-${a}-[0-9a-f]{16}-01$`));
      expect(parents[0]).not.toBe(parents[1]);
      expect(parents[2]).not.toContain(a);
      expect(messages[0]?.headers?.tracestate).toBe("k=v");
      // Over W3C's 512 characters the tracestate is not carried (the contract's size bound).
      expect(messages[1]?.headers?.tracestate).toBeUndefined();
      expect(messages[0]?.headers?.["trace-id"]).toBe("tr");
      sends[0]?.done.resolve();
      await done;
      await tracing.forceFlush();
      const spans = exporter.getFinishedSpans();
      expect(spans.map((s) => s.name)).toEqual(["publish t", "publish t", "publish t"]);
      expect(spans[0]?.parentSpanContext?.spanId).toBe("b7ad6b7169203331");
      expect(parents[0]).toContain(spans[0]?.spanContext().spanId as string);
    } finally {
      await tracing.shutdown();
    }
  });

  test("a failed publish ends its spans with an error status", async () => {
    const exporter = new InMemorySpanExporter();
    const tracing = await startTracing(
      { serviceName: "t", sampler: "parentbased_always_on", samplerRatio: 1 },
      { exporter },
    );
    try {
      const { kafka, sends } = fakeKafka();
      const publisher = createPublisher({ kafka, topic: "t" });
      const done = publisher.publish([n(1)]);
      sends[0]?.done.reject(new KafkaJSConnectionError("down"));
      await expect(done).rejects.toThrow(FandaError);
      await tracing.forceFlush();
      expect(exporter.getFinishedSpans()[0]?.status.code).toBe(SpanStatusCode.ERROR);
    } finally {
      await tracing.shutdown();
    }
  });
});

describe("renewing producer", () => {
  /** Producers that fail their sends with `error` until `healthyFrom` producers were made. */
  function lossyKafka(error: () => Error, healthyFrom: number) {
    const made: { sent: ProducerRecord[]; connected: boolean; disconnected: boolean }[] = [];
    const kafka = {
      producer: () => {
        const index = made.length;
        const state = { sent: [] as ProducerRecord[], connected: false, disconnected: false };
        made.push(state);
        return {
          connect: async () => {
            state.connected = true;
          },
          disconnect: async () => {
            state.disconnected = true;
          },
          send: async (record: ProducerRecord) => {
            if (index < healthyFrom) throw error();
            state.sent.push(record);
          },
        };
      },
    } as unknown as Kafka;
    return { kafka, made };
  }
  const lostState = (type: string) =>
    new KafkaJSNumberOfRetriesExceeded(
      new KafkaJSProtocolError({
        message: "The broker received an out of order sequence number",
        type,
        code: 45,
        retriable: false,
      } as unknown as Error),
      { retryCount: 5, retryTime: 1000 },
    );

  test.each(["OUT_OF_ORDER_SEQUENCE_NUMBER", "UNKNOWN_PRODUCER_ID", "INVALID_PRODUCER_EPOCH"])(
    "after %s (the brokers lost its sequence state) the publisher sends on a new producer",
    async (type) => {
      const { kafka, made } = lossyKafka(() => lostState(type), 1);
      const renewed: unknown[] = [];
      const publisher = createPublisher({ kafka, topic: "t", onRenew: (e) => renewed.push(e) });
      await publisher.publish([n(1)]);
      await publisher.publish([n(2)]);
      expect(made).toHaveLength(2);
      expect(made[0]?.disconnected).toBe(true);
      expect(made[1]?.sent.flatMap((r) => keys(r.messages))).toEqual([
        "bucket/k/f1.pdf",
        "bucket/k/f2.pdf",
      ]);
      expect(renewed).toHaveLength(1);
    },
  );

  test("the send that met the lost state is tried once more on the new producer", async () => {
    const { kafka, made } = lossyKafka(() => lostState("OUT_OF_ORDER_SEQUENCE_NUMBER"), 1);
    const producer = createRenewingProducer(kafka);
    await producer.connect();
    await producer.send({ topic: "t", messages: [{ value: "v" }] });
    expect(producer.renewals()).toBe(1);
    expect(made[1]).toMatchObject({ connected: true, disconnected: false });
    expect(made[1]?.sent).toHaveLength(1);
  });

  test("other failures are thrown as they are, and the producer is kept", async () => {
    const { kafka, made } = lossyKafka(() => new KafkaJSConnectionError("broker down"), 1);
    const producer = createRenewingProducer(kafka);
    await producer.connect();
    await expect(producer.send({ topic: "t", messages: [{ value: "v" }] })).rejects.toThrow(
      "broker down",
    );
    expect(producer.renewals()).toBe(0);
    expect(made).toHaveLength(1);
  });

  test("concurrent sends that meet the lost state renew once", async () => {
    const { kafka, made } = lossyKafka(() => lostState("OUT_OF_ORDER_SEQUENCE_NUMBER"), 1);
    const producer = createRenewingProducer(kafka);
    await producer.connect();
    await Promise.all(
      Array.from({ length: 5 }, () => producer.send({ topic: "t", messages: [{ value: "v" }] })),
    );
    expect(producer.renewals()).toBe(1);
    expect(made).toHaveLength(2);
    expect(made[1]?.sent).toHaveLength(5);
  });

  test("a producer that keeps losing its state fails the send after one renewal", async () => {
    const { kafka } = lossyKafka(() => lostState("OUT_OF_ORDER_SEQUENCE_NUMBER"), 99);
    const producer = createRenewingProducer(kafka);
    await producer.connect();
    await expect(producer.send({ topic: "t", messages: [{ value: "v" }] })).rejects.toThrow();
    expect(producer.renewals()).toBe(1);
  });
});
