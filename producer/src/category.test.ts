import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { ConfigError } from "../../core/errors.ts";
import { hostileString, hostileValue, PROTOTYPE_NAMES } from "../../core/testing/hostile.ts";
import {
  type CategoryRule,
  createCategorizer,
  DEFAULT_CATEGORY_RULES,
  parseCategoryRules,
} from "./category.ts";

describe("createCategorizer", () => {
  const categorize = createCategorizer();

  test.each([
    ["reports/positive/q3.pdf", "positive"],
    ["reports/negative/incident.csv", "negative"],
    ["reports/other/x", "general"],
    ["reports/positive", "general"],
    ["Reports/Positive/q3.pdf", "general"],
    ["uploads/a.png", "general"],
    ["", "general"],
  ])("%s is %s (built-in rules, case-sensitive)", (key, category) => {
    expect(categorize(key)).toBe(category);
  });

  test("uses configured rules in order, first match wins", () => {
    const c = createCategorizer({
      rules: [
        { prefix: "a/b/", category: "deep" },
        { prefix: "a/", category: "shallow" },
      ],
      fallback: "other",
    });
    expect([c("a/b/x"), c("a/x"), c("z")]).toEqual(["deep", "shallow", "other"]);
  });

  test("rejects a rule shadowed by an earlier, broader prefix", () => {
    expect(() =>
      createCategorizer({
        rules: [
          { prefix: "a/", category: "shallow" },
          { prefix: "a/b/", category: "deep" },
        ],
      }),
    ).toThrow(/rules\.1: prefix "a\/b\/" is shadowed by rule 0/);
  });

  test("reports every bad rule at once", () => {
    try {
      createCategorizer({
        rules: [
          { prefix: "", category: "x" },
          { prefix: "p/", category: "Bad Name" },
        ],
        fallback: "ALSO BAD",
      });
      throw new Error("expected a ConfigError");
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).issues).toHaveLength(3);
    }
  });

  test("the default rules are the built-in ones", () => {
    expect(DEFAULT_CATEGORY_RULES).toEqual([
      { prefix: "reports/positive/", category: "positive" },
      { prefix: "reports/negative/", category: "negative" },
    ]);
  });
});

describe("parseCategoryRules", () => {
  test("reads an ordered JSON list", () => {
    expect(parseCategoryRules('[{"prefix":"x/","category":"xs"}]')).toEqual([
      { prefix: "x/", category: "xs" },
    ]);
  });

  test.each([
    ["not JSON", "prefix=x", /CATEGORY_RULES: not valid JSON/],
    ["an object", '{"prefix":"x/"}', /CATEGORY_RULES/],
    ["an empty list", "[]", /CATEGORY_RULES/],
    ["a missing category", '[{"prefix":"x/"}]', /CATEGORY_RULES\[0\.category\]/],
    ["an unknown field", '[{"prefix":"x/","category":"x","extra":1}]', /CATEGORY_RULES\[0\]/],
  ])("rejects %s naming the variable", (_name, text, message) => {
    expect(() => parseCategoryRules(text)).toThrow(message);
  });
});

describe("categories (property)", () => {
  test("any key gets one of the rules' categories or the fallback", () => {
    const categorize = createCategorizer();
    fc.assert(
      fc.property(fc.oneof(hostileString, fc.constantFrom(...PROTOTYPE_NAMES)), (key) => {
        expect(["positive", "negative", "general"]).toContain(categorize(key));
      }),
    );
  });

  test("rules named like built-in properties classify as configured", () => {
    const rules = PROTOTYPE_NAMES.map((prefix) => ({ prefix: `${prefix}/`, category: "proto" }));
    const categorize = createCategorizer({ rules });
    fc.assert(
      fc.property(fc.constantFrom(...PROTOTYPE_NAMES), fc.string(), (name, rest) => {
        expect(categorize(`${name}/${rest}`)).toBe("proto");
        expect(categorize(name)).toBe("general");
      }),
    );
  });

  test("any rules and fallback build a categorizer or raise ConfigError, nothing else", () => {
    const rules = fc.oneof(
      hostileValue,
      fc.array(fc.oneof(hostileValue, fc.record({ prefix: hostileValue, category: hostileValue }))),
      fc.array(fc.record({ prefix: hostileString, category: hostileString })),
    );
    fc.assert(
      fc.property(rules, fc.oneof(hostileString, fc.constant(undefined)), (r, fallback) => {
        try {
          const categorize = createCategorizer({
            rules: r as CategoryRule[],
            ...(fallback === undefined ? {} : { fallback }),
          });
          expect(typeof categorize("reports/positive/x")).toBe("string");
        } catch (err) {
          expect(err).toBeInstanceOf(ConfigError);
        }
      }),
      { numRuns: 500 },
    );
  });

  test("any CATEGORY_RULES text gives rules or raises ConfigError, nothing else", () => {
    const texts = fc.oneof(
      fc.string(),
      fc.jsonValue().map((v) => JSON.stringify(v) ?? ""),
      hostileValue.map((v) => JSON.stringify(v) ?? ""),
      fc
        .array(fc.record({ prefix: hostileString, category: hostileString }))
        .map((v) => JSON.stringify(v)),
    );
    fc.assert(
      fc.property(texts, (text) => {
        try {
          createCategorizer({ rules: parseCategoryRules(text) });
        } catch (err) {
          expect(err).toBeInstanceOf(ConfigError);
        }
      }),
      { numRuns: 500 },
    );
  });
});
