import { describe, expect, test } from "bun:test";
import { ConfigError } from "../../core/errors.ts";
import { createCategorizer, DEFAULT_CATEGORY_RULES, parseCategoryRules } from "./category.ts";

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
