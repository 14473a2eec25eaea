import { describe, expect, test } from "bun:test";
import { FandaError } from "./errors.ts";
import { createLogger, type LogLevel } from "./log.ts";

function capture(level: LogLevel = "debug") {
  const lines: { line: Record<string, unknown>; level: LogLevel }[] = [];
  const logger = createLogger({
    level,
    ns: "t",
    sink: (l, lv) => lines.push({ line: JSON.parse(l), level: lv }),
  });
  return { logger, lines };
}

describe("logger", () => {
  test("writes one JSON object per line with time, level, namespace and fields", () => {
    const { logger, lines } = capture();
    logger.child("consumer").info("batch done", { partition: 3 });
    expect(lines[0]?.line).toMatchObject({
      level: "info",
      ns: "t.consumer",
      msg: "batch done",
      partition: 3,
    });
    expect(typeof lines[0]?.line.time).toBe("string");
  });

  test("drops lines below the level", () => {
    const { logger, lines } = capture("warn");
    logger.debug("d");
    logger.info("i");
    logger.warn("w");
    logger.error("e");
    expect(lines.map((l) => l.line.msg)).toEqual(["w", "e"]);
  });

  test("expands err with retriable and its cause chain", () => {
    const { logger, lines } = capture();
    const err = new FandaError("op", "failed", { retriable: true, cause: new Error("root") });
    logger.error("x", { err });
    expect(lines[0]?.line.err).toEqual({
      name: "FandaError",
      message: "op: failed",
      retriable: true,
      cause: { name: "Error", message: "root" },
    });
  });
});
