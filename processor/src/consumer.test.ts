import { describe, expect, test } from "bun:test";
import { createLogger } from "../../core/log.ts";
import {
  type ConsumerOptions,
  type ConsumerState,
  createNotificationConsumer,
  stallReason,
} from "./consumer.ts";
import { ConfigError } from "./errors.ts";

const running: ConsumerState = { running: true, joined: true, partitions: [0, 1], paused: [] };

describe("stallReason", () => {
  test("names what the consumer knows of a partition that does not progress", () => {
    expect(stallReason({ ...running, missingTopics: ["t.dlq"] }, 0)).toBe("topic-missing");
    expect(stallReason({ ...running, running: false, fatal: new Error("x") }, 0)).toBe("crashed");
    expect(stallReason({ ...running, running: false }, 0)).toBe("not-running");
    const notFinal = [{ partition: 0, reason: "dlq-unavailable", at: 2000 }];
    expect(stallReason({ ...running, notFinal }, 0)).toBe("dlq-unavailable");
    expect(stallReason({ ...running, notFinal }, 1)).toBe("unknown");
    // A batch that started before the last stop and still runs: a send that hangs.
    expect(
      stallReason({ ...running, notFinal, inFlight: [{ partition: 0, since: 1000 }] }, 0),
    ).toBe("in-flight");
    // The batch after the pause: the last reason still stands while it runs.
    expect(
      stallReason({ ...running, notFinal, inFlight: [{ partition: 0, since: 3000 }] }, 0),
    ).toBe("dlq-unavailable");
    expect(stallReason({ ...running, inFlight: [{ partition: 1, since: 3000 }] }, 1)).toBe(
      "in-flight",
    );
  });
});

describe("createNotificationConsumer options", () => {
  test.each([0, -1, 1.5, Number.NaN])("refuses claimRenewal.intervalMs %p", (intervalMs) => {
    const options = {
      kafka: {},
      topic: "t",
      groupId: "g",
      logger: createLogger({ level: "error", sink: () => {} }),
      claimRenewal: { intervalMs },
    } as unknown as ConsumerOptions;
    expect(() => createNotificationConsumer(options)).toThrow(ConfigError);
    expect(() => createNotificationConsumer(options)).toThrow(/claimRenewal.intervalMs/);
  });
});
