/**
 * The fault helpers the chaos run relies on, against real servers: the TCP proxy cuts a
 * client's path and restores it, and a Redis pair's failover leaves an open connection on a
 * read-only node while new connections reach the new primary.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { connect } from "node:net";
import { Redis } from "ioredis";
import { type RedisPair, redisCommand, startRedisPair, startTcpProxy } from "./local.ts";

/** Sends `line` through 127.0.0.1:`port` and resolves with the first reply, or the error. */
const roundTrip = (port: number, line: string) =>
  new Promise<string>((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("error", reject);
    socket.once("data", (data) => {
      resolve(String(data));
      socket.destroy();
    });
    socket.write(line);
  });

describe("startTcpProxy", () => {
  const echo = Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    socket: { data: (s, data) => void s.write(data) },
  });
  afterAll(() => echo.stop(true));

  test("pipes, refuses and drops while cut, pipes again after restore", async () => {
    const proxy = await startTcpProxy(echo.port);
    try {
      expect(await roundTrip(proxy.port, "hello")).toBe("hello");
      const open = connect(proxy.port, "127.0.0.1");
      await new Promise((r) => open.once("connect", r));
      const closed = new Promise((r) => open.once("close", r));
      proxy.cut();
      await closed;
      await expect(roundTrip(proxy.port, "again")).rejects.toThrow(/ECONNREFUSED/);
      await proxy.restore();
      expect(await roundTrip(proxy.port, "back")).toBe("back");
    } finally {
      await proxy.stop();
    }
  });
});

describe("startRedisPair", () => {
  let pair: RedisPair | undefined;
  afterAll(async () => pair?.stop());

  test("a failover leaves the open connection READONLY and moves new ones", async () => {
    pair = await startRedisPair();
    const before = new Redis(pair.url, { maxRetriesPerRequest: 0, reconnectOnError: () => false });
    before.on("error", () => {});
    await before.set("k", "1");
    const oldPrimary = pair.primary().port;
    await pair.failover();
    expect(pair.replica().port).toBe(oldPrimary);
    await expect(before.set("k", "2")).rejects.toThrow(/READONLY/);
    const after = new Redis(pair.url, { maxRetriesPerRequest: 0 });
    after.on("error", () => {});
    await after.set("k", "3");
    expect(await redisCommand(pair.primary().port, ["GET", "k"])).toBe("3");
    before.disconnect();
    after.disconnect();
  });
});
