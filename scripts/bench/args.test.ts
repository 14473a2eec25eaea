import { describe, expect, test } from "bun:test";
import { runCommand } from "../../test/support/local.ts";
import { checkOptions, parseOptions, UsageError } from "./args.ts";

describe("checkOptions", () => {
  test("parses integers in range and de-duplicates lists", () => {
    const { ints, lists } = checkOptions(
      { events: { value: "200000", min: 1, max: 1_000_000 } },
      { runtimes: { value: " bun,node,bun ", allowed: ["bun", "node"] } },
    );
    expect(ints.events).toBe(200_000);
    expect(lists.runtimes).toEqual(["bun", "node"]);
  });

  test.each([
    ["", '--events: expected a whole number, got ""'],
    ["ten", '--events: expected a whole number, got "ten"'],
    ["1.5", '--events: expected a whole number, got "1.5"'],
    ["0", "--events: expected 1 to 100, got 0"],
    ["101", "--events: expected 1 to 100, got 101"],
  ])("refuses --events %p", (value, message) => {
    expect(() => checkOptions({ events: { value, min: 1, max: 100 } })).toThrow(message);
  });

  test.each([
    ["", 'expected a comma-separated list of bun, node, got ""'],
    ["bun,deno", 'expected a comma-separated list of bun, node, got "bun,deno"'],
    [",", 'expected a comma-separated list of bun, node, got ","'],
  ])("refuses --runtimes %p", (value, message) => {
    expect(() => checkOptions({}, { runtimes: { value, allowed: ["bun", "node"] } })).toThrow(
      message,
    );
  });

  test("a single choice refuses two items", () => {
    expect(() =>
      checkOptions({}, { redis: { value: "aof,empty", allowed: ["aof", "empty"], single: true } }),
    ).toThrow('--redis: expected one of aof, empty, got "aof,empty"');
  });

  test("parseOptions: defaults, and unknown options or missing values as usage errors", () => {
    const spec = { rate: { default: "500" }, plot: {} };
    expect(parseOptions(spec, [])).toEqual({ rate: "500" });
    expect(parseOptions(spec, ["--plot", "a.svg", "--rate=7"])).toEqual({
      rate: "7",
      plot: "a.svg",
    });
    expect(() => parseOptions(spec, ["--nope", "1"])).toThrow(UsageError);
    expect(() => parseOptions(spec, ["--plot"])).toThrow("argument missing");
    expect(() => parseOptions(spec, ["stray"])).toThrow(UsageError);
  });

  test("reports every bad option at once", () => {
    try {
      checkOptions(
        { rate: { value: "0", min: 1, max: 10 }, seconds: { value: "x", min: 1, max: 10 } },
        { channels: { value: "sms", allowed: ["webhook"] } },
      );
      throw new Error("expected a UsageError");
    } catch (err) {
      expect(err).toBeInstanceOf(UsageError);
      expect((err as UsageError).problems.map((p) => p.split(":")[0])).toEqual([
        "--rate",
        "--seconds",
        "--channels",
      ]);
    }
  });
});

describe("the scripts refuse bad options before starting anything (exit 2)", () => {
  test.each([
    [["scripts/bench/pipeline.ts", "--events", "0"], "--events: expected 1 to 1000000, got 0"],
    [["scripts/bench/pipeline.ts", "--runtimes", "deno"], "--runtimes: expected"],
    [["scripts/bench/pipeline.ts", "--channels", "email"], "--channels: expected"],
    [["scripts/bench/ingest.ts", "--rate", "0"], "--rate: expected 1 to 5000, got 0"],
    [["scripts/bench/ingest.ts", "--rats", "5"], "Unknown option '--rats'"],
    [["scripts/bench/pipeline.ts", "--events"], "Option '--events <value>' argument missing"],
    [["scripts/chaos.ts", "--redis", "maybe"], '--redis: expected one of aof, empty, got "maybe"'],
    [["scripts/chaos.ts", "--events", "10"], "--events: expected 100 to 1000000, got 10"],
    [["scripts/bench/bare-delivery.ts", "--events", "5"], "--topic and --url are required"],
    [["scripts/bench/bare-delivery.ts", "--events", "x"], "--events: expected a whole number"],
  ])("%p", async (args, message) => {
    const result = await runCommand(["bun", ...args], { cwd: `${import.meta.dir}/../..` });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(message);
  });
});
