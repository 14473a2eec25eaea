import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { parseStackEnv, renderStackEnv } from "./env-sync.ts";

describe("stack.env", () => {
  test("renders the stack's environment sorted, one key=value per line, and parses back", () => {
    const text = renderStackEnv("dev", { region: "ap-northeast-2", environment: "dev", b: "x=y" });
    expect(text.split("\n").filter((l) => !l.startsWith("#"))).toEqual([
      "b=x=y",
      "environment=dev",
      "region=ap-northeast-2",
      "",
    ]);
    expect(parseStackEnv(text)).toEqual({ b: "x=y", environment: "dev", region: "ap-northeast-2" });
  });

  test.each([
    ["no output at all", undefined, "no `environment` output"],
    ["an array", ["a"], "no `environment` output"],
    ["an empty value", { namespace: "" }, "namespace: expected a non-empty string"],
    ["a number", { partitions: 6 }, "partitions: expected a non-empty string"],
    ["a line break", { vpcCidr: "10.0.0.0/16\nx=1" }, "vpcCidr: value must be one line"],
    ["surrounding spaces", { namespace: " fanda" }, "namespace: value must be one line"],
    ["a quoted value", { slackChannel: '"#x"' }, "slackChannel: value must be one line"],
    ["a bad key", { "a-b": "x" }, "a-b: not a plain key"],
    ["another environment's stack", { environment: "prod" }, "the stack says prod, expected dev"],
  ])("refuses %s, naming the key", (_name, value, message) => {
    expect(() => renderStackEnv("dev", value)).toThrow(message);
  });

  test("lists every bad key at once", () => {
    expect(() => renderStackEnv("dev", { a: "", b: 1 })).toThrow(/a: .*\n.*b: /s);
  });

  test("a malformed file is refused with its line", () => {
    expect(() => parseStackEnv("# c\nregion\n")).toThrow("stack.env line 2: expected key=value");
    expect(Object.entries(parseStackEnv("toString=x"))).toEqual([["toString", "x"]]);
    expect(Object.getPrototypeOf(parseStackEnv("a=b"))).toBeNull();
  });

  test("whatever the stack holds, rendering either refuses it or round-trips it exactly", () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.oneof(fc.string(), fc.integer())), (env) => {
        let text: string;
        try {
          text = renderStackEnv("prod", { ...env, environment: "prod" });
        } catch (err) {
          expect((err as Error).message).toContain("stack environment of prod is invalid");
          return;
        }
        expect({ ...parseStackEnv(text) }).toEqual({ ...env, environment: "prod" });
      }),
    );
  });
});
