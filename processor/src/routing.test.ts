import { describe, expect, test } from "bun:test";
import { createRouter, parseRoutingRules } from "./routing.ts";

describe("routing", () => {
  test("without rules every category goes to every enabled channel (the default)", () => {
    const route = createRouter({ enabled: ["log", "webhook"] });
    for (const c of ["positive", "negative", "general", "other"]) {
      expect(route(c)).toEqual({ channels: ["log", "webhook"], targets: {} });
    }
  });

  test("routes categories by rule, others by the default", () => {
    const rules = parseRoutingRules(
      JSON.stringify({
        categories: {
          negative: { channels: ["webhook", "log"], targets: { webhook: { url: "x" } } },
        },
        default: { channels: ["log"] },
      }),
      "ROUTING_RULES",
    );
    const route = createRouter({ enabled: ["log", "webhook"], rules });
    expect(route("negative")).toEqual({
      channels: ["webhook", "log"],
      targets: { webhook: { url: "x" } },
    });
    expect(route("positive")).toEqual({ channels: ["log"], targets: {} });
  });

  test.each([
    ["not JSON", "{", "ROUTING_RULES: not valid JSON"],
    ["an unknown top-level key", '{"routes":{}}', "ROUTING_RULES: (root): Unrecognized key"],
    [
      "a bad category name",
      '{"categories":{"Bad Name":{"channels":["log"]}}}',
      "ROUTING_RULES: categories.Bad Name",
    ],
    ["no channels", '{"categories":{"positive":{"channels":[]}}}', "at least one channel"],
  ])("rejects %s", (_name, text, message) => {
    expect(() => parseRoutingRules(text, "ROUTING_RULES")).toThrow(message);
  });

  test("rejects channels that are not enabled and targets for channels not routed to", () => {
    const rules = parseRoutingRules(
      JSON.stringify({
        categories: { positive: { channels: ["slack"], targets: { email: { to: ["a@b.c"] } } } },
      }),
      "ROUTING_RULES",
    );
    expect(() => createRouter({ enabled: ["log"], rules })).toThrow(
      /categories\.positive\.channels: slack is not in ENABLED_CHANNELS[\s\S]*targets\.email: the route does not send to email/,
    );
  });

  test("a category named like a built-in object property gets its own rule or the fallback, never an inherited value", () => {
    const rules = parseRoutingRules(
      JSON.stringify({
        categories: { constructor: { channels: ["webhook"] } },
        default: { channels: ["log"] },
      }),
      "ROUTING_RULES",
    );
    const route = createRouter({ enabled: ["log", "webhook"], rules });
    expect(route("constructor")).toEqual({ channels: ["webhook"], targets: {} });
    const plain = createRouter({ enabled: ["log"] });
    for (const c of ["constructor", "toString", "__proto__", "valueOf", "hasOwnProperty"]) {
      expect(route(c === "constructor" ? "isPrototypeOf" : c)).toEqual({
        channels: ["log"],
        targets: {},
      });
      expect(plain(c)).toEqual({ channels: ["log"], targets: {} });
    }
  });
});
