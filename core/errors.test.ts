import { describe, expect, test } from "bun:test";
import { ConfigError, FandaError, InvalidInputError, toFandaError } from "./errors.ts";

describe("errors", () => {
  test("FandaError names the operation and keeps the cause", () => {
    const cause = new Error("socket closed");
    const err = new FandaError("kafka: sending", "no ack", { retriable: true, cause });
    expect(err.message).toBe("kafka: sending: no ack");
    expect(err.name).toBe("FandaError");
    expect(err.retriable).toBe(true);
    expect(err.cause).toBe(cause);
  });

  test("subclasses carry their own name and are final", () => {
    expect(new InvalidInputError("op", "bad").name).toBe("InvalidInputError");
    expect(new InvalidInputError("op", "bad").retriable).toBe(false);
    const config = new ConfigError("processor", ["A: bad", "B: worse"]);
    expect(config.message).toContain("A: bad\n  - B: worse");
    expect(config.retriable).toBe(false);
  });

  test.each([
    [new TypeError("x is undefined"), false],
    [new RangeError("too big"), false],
    [new Error("ECONNRESET"), true],
    ["a string", true],
    [Object.assign(new Error("kafkajs"), { retriable: false }), false],
    [Object.assign(new Error("kafkajs"), { retriable: true }), true],
  ])("toFandaError(%p) is retriable: %p", (input, retriable) => {
    const err = toFandaError("op", input);
    expect(err).toBeInstanceOf(FandaError);
    expect(err.retriable).toBe(retriable);
    expect(err.cause).toBe(input);
  });

  test("toFandaError keeps a FandaError as it is", () => {
    const original = new InvalidInputError("op", "bad");
    expect(toFandaError("other", original)).toBe(original);
  });
});
