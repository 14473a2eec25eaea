import { describe, expect, test } from "bun:test";
import { createRateLimiter } from "./rate-limit.ts";

/** A virtual clock: sleeping advances it, so the limiter's schedule is exact. */
function clock() {
  let t = 1_000_000;
  const waits: number[] = [];
  return {
    now: () => t,
    sleep: async (ms: number) => {
      waits.push(ms);
      t += ms;
    },
    advance: (ms: number) => {
      t += ms;
    },
    waits,
  };
}

describe("rate limiter", () => {
  test("lets a burst through, then spaces sends at the rate", async () => {
    const c = clock();
    const limiter = createRateLimiter({ rate: 2, burst: 3, now: c.now, sleep: c.sleep });
    for (let i = 0; i < 6; i++) await limiter.take();
    expect(c.waits).toEqual([500, 500, 500]);
  });

  test("refills while idle, up to the burst", async () => {
    const c = clock();
    const limiter = createRateLimiter({ rate: 1, burst: 2, now: c.now, sleep: c.sleep });
    await limiter.take();
    await limiter.take();
    c.advance(10_000);
    await limiter.take();
    await limiter.take();
    expect(c.waits).toEqual([]);
    await limiter.take();
    expect(c.waits).toEqual([1000]);
  });

  test("never exceeds the rate over any window, with concurrent takers", async () => {
    const c = clock();
    const limiter = createRateLimiter({ rate: 5, burst: 2, now: c.now, sleep: c.sleep });
    const sentAt: number[] = [];
    // Each take reserves its slot synchronously; record when each would send.
    await Promise.all(
      Array.from({ length: 20 }, async () => {
        const before = c.now();
        const waitsBefore = c.waits.length;
        await limiter.take();
        sentAt.push(before + (c.waits[waitsBefore] ?? 0));
      }),
    );
    sentAt.sort((a, b) => a - b);
    for (let i = 0; i < sentAt.length; i++) {
      const inWindow = sentAt.filter((s) => s >= (sentAt[i] ?? 0) && s < (sentAt[i] ?? 0) + 1000);
      expect(inWindow.length).toBeLessThanOrEqual(5 + 2);
    }
  });

  test("reports each wait to onWait", async () => {
    const c = clock();
    const waited: number[] = [];
    const limiter = createRateLimiter({
      rate: 4,
      now: c.now,
      sleep: c.sleep,
      onWait: (ms) => waited.push(ms),
    });
    await limiter.take();
    await limiter.take();
    await limiter.take();
    expect(waited).toEqual([250, 250]);
  });

  test("block holds every sender for the given time", async () => {
    const c = clock();
    const limiter = createRateLimiter({ rate: 10, burst: 1, now: c.now, sleep: c.sleep });
    limiter.block(3000);
    expect(limiter.waitMs()).toBe(3000);
    await limiter.take();
    expect(c.waits).toEqual([3000]);
  });

  test("a backward step of the wall clock does not stall takers (the default clock is monotonic)", async () => {
    const waits: number[] = [];
    const wall = Date.now;
    let stepped = 0;
    // The wall clock jumps back an hour after the first take (NTP, a VM resumed): only what
    // the limiter reads by default is left to it; its waits are recorded, never slept.
    Date.now = () => wall() - stepped;
    try {
      const limiter = createRateLimiter({
        rate: 1,
        burst: 1,
        sleep: async (ms) => void waits.push(ms),
      });
      await limiter.take();
      stepped = 3_600_000;
      await limiter.take();
      expect(limiter.waitMs()).toBeLessThanOrEqual(2000);
    } finally {
      Date.now = wall;
    }
    expect(waits.every((ms) => ms <= 1000)).toBe(true);
  });

  test("an aborted wait rejects", async () => {
    const limiter = createRateLimiter({ rate: 1 });
    await limiter.take();
    const controller = new AbortController();
    const waiting = limiter.take(controller.signal);
    controller.abort(new Error("stop"));
    await expect(waiting).rejects.toThrow("stop");
  });

  test.each([
    [{ rate: 0 }, /rate/],
    [{ rate: Number.POSITIVE_INFINITY }, /rate/],
    [{ rate: 1, burst: 0 }, /burst/],
    [{ rate: 1, burst: 1.5 }, /burst/],
  ])("refuses %p", (options, message) => {
    expect(() => createRateLimiter(options)).toThrow(message);
  });
});
