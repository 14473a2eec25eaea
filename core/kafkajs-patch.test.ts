/**
 * The patched kafkajs producer (patches/kafkajs@2.2.4.patch): a retried produce request sends
 * every partition that has no answer yet, to whichever broker leads it now.
 */
import { describe, expect, test } from "bun:test";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const createSendMessages = require("kafkajs/src/producer/sendMessages.js");
const retry = require("kafkajs/src/retry/index.js");
const { createErrorFromCode } = require("kafkajs/src/protocol/error.js");

interface ProduceCall {
  topicData: { topic: string; partitions: { partition: number | string; messages: unknown[] }[] }[];
}

/** Brokers 1 and 2; partition `p` is led by `leaders[p]`, which the test may move. */
function cluster(leaders: Record<number, number>) {
  const calls: Record<number, ProduceCall[]> = { 1: [], 2: [] };
  const failNext: Record<number, number> = { 1: 0, 2: 0 };
  const broker = (nodeId: number) => ({
    nodeId,
    produce: async (request: ProduceCall) => {
      calls[nodeId]?.push(request);
      if ((failNext[nodeId] ?? 0) > 0) {
        failNext[nodeId] = (failNext[nodeId] ?? 0) - 1;
        throw createErrorFromCode(6); // NOT_LEADER_OR_FOLLOWER: retriable
      }
      return {
        topics: request.topicData.map(({ topic, partitions }) => ({
          topicName: topic,
          partitions: partitions.map((p) => ({
            partition: Number(p.partition),
            errorCode: 0,
            baseOffset: "0",
          })),
        })),
      };
    },
  });
  const brokers: Record<number, ReturnType<typeof broker>> = { 1: broker(1), 2: broker(2) };
  let onRefresh = () => {};
  const fake = {
    addMultipleTargetTopics: async () => {},
    refreshMetadata: async () => onRefresh(),
    refreshMetadataIfNecessary: async () => {},
    findTopicPartitionMetadata: () =>
      Object.entries(leaders).map(([p, leader]) => ({ partitionId: Number(p), leader })),
    findLeaderForPartitions: (_topic: string, partitions: (number | string)[]) => {
      const out: Record<number, number[]> = {};
      for (const p of partitions) {
        const leader = leaders[Number(p)] as number;
        out[leader] = [...(out[leader] ?? []), Number(p)];
      }
      return out;
    },
    findBroker: async ({ nodeId }: { nodeId: number | string }) => brokers[Number(nodeId)],
    targetTopics: new Set<string>(),
    isConnected: () => true,
  };
  return {
    fake,
    calls,
    failNext,
    whenRefreshed: (fn: () => void) => {
      onRefresh = fn;
    },
  };
}

const eosManager = {
  getProducerId: () => -1,
  getProducerEpoch: () => 0,
  getSequence: () => 0,
  getTransactionalId: () => undefined,
  updateSequence: () => {},
  isTransactional: () => false,
  addPartitionsToTransaction: async () => {},
  acquireBrokerLock: async () => {},
  releaseBrokerLock: async () => {},
};
const logger = { debug() {}, info() {}, warn() {}, error() {} };

const sendMessagesOf = (fake: unknown) =>
  createSendMessages({
    logger,
    cluster: fake,
    partitioner: ({ message }: { message: { key: string } }) => Number(message.key),
    eosManager,
    retrier: retry({ retries: 3, initialRetryTime: 1, maxRetryTime: 5 }),
  });

const sentPartitions = (calls: ProduceCall[]) =>
  calls.flatMap((c) => c.topicData.flatMap((t) => t.partitions.map((p) => Number(p.partition))));

describe("patched kafkajs sendMessages", () => {
  test("a failed leader's partition that moved to a broker which already answered is sent to it", async () => {
    const leaders: Record<number, number> = { 0: 1, 1: 2 };
    const c = cluster(leaders);
    c.failNext[2] = 1;
    // Broker 2 was killed: after the refresh, broker 1 leads its partition.
    c.whenRefreshed(() => {
      leaders[1] = 1;
    });
    const send = sendMessagesOf(c.fake);
    const responses = await send({
      acks: -1,
      timeout: 1000,
      topicMessages: [{ topic: "t", messages: [{ key: "0" }, { key: "1" }] }],
    });
    expect(sentPartitions(c.calls[1] ?? [])).toEqual([0, 1]);
    expect(
      responses
        .map((r: { partition: number }) => r.partition)
        .sort((a: number, b: number) => a - b),
    ).toEqual([0, 1]);
  });

  test("a partition that was answered is not sent again", async () => {
    const leaders: Record<number, number> = { 0: 1, 1: 2 };
    const c = cluster(leaders);
    c.failNext[2] = 1;
    const send = sendMessagesOf(c.fake);
    await send({
      acks: -1,
      timeout: 1000,
      topicMessages: [{ topic: "t", messages: [{ key: "0" }, { key: "1" }] }],
    });
    expect(sentPartitions(c.calls[1] ?? [])).toEqual([0]);
    expect(sentPartitions(c.calls[2] ?? [])).toEqual([1, 1]);
  });
});
