import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { createRouter, parseRoutingRules } from "./routing.ts";

/** Names every plain object inherits, which data must never reach. */
const INHERITED = Object.getOwnPropertyNames(Object.prototype);

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

describe("routing (properties)", () => {
  const channels = ["log", "webhook", "slack"];
  const category = fc.oneof(
    fc.string({ unit: "binary" }),
    fc.constantFrom(...INHERITED),
    fc.stringMatching(/^[a-z][a-z0-9_-]{0,8}$/),
  );
  const route = fc.record({
    channels: fc.subarray(channels, { minLength: 1 }),
  });
  const rulesText = fc.record(
    {
      categories: fc.dictionary(
        fc.oneof(fc.stringMatching(/^[a-z][a-z0-9_-]{0,8}$/), fc.constant("constructor")),
        route,
      ),
      default: route,
    },
    { requiredKeys: ["categories"] },
  );

  test("any category gets its own rule or the fallback: never an inherited value, never a throw", () => {
    fc.assert(
      fc.property(rulesText, fc.array(category, { maxLength: 20 }), (rules, asked) => {
        const router = createRouter({
          enabled: channels,
          rules: parseRoutingRules(JSON.stringify(rules), "ROUTING_RULES"),
        });
        const fallback = rules.default ?? { channels };
        for (const c of [...asked, ...INHERITED]) {
          const expected = (Object.hasOwn(rules.categories, c) && rules.categories[c]) || fallback;
          expect(router(c)).toEqual({ channels: expected.channels, targets: {} });
        }
      }),
      { numRuns: 300 },
    );
  });
});
