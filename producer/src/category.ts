/**
 * Classifies an object by its key: an ordered list of prefix rules, first match wins,
 * case-sensitive as S3 keys are. The built-in rules are the default.
 */
import { z } from "zod";
import { categorySchema } from "../../core/contract.ts";
import { ConfigError } from "../../core/errors.ts";

/** One rule: keys starting with `prefix` get `category`. */
export interface CategoryRule {
  prefix: string;
  category: string;
}

/** The built-in rules: `reports/positive/` → positive, `reports/negative/` → negative. */
export const DEFAULT_CATEGORY_RULES: readonly CategoryRule[] = Object.freeze([
  { prefix: "reports/positive/", category: "positive" },
  { prefix: "reports/negative/", category: "negative" },
]);

/** Category of keys that match no rule. */
export const DEFAULT_CATEGORY = "general";

const rulesSchema = z
  .array(z.object({ prefix: z.string().min(1), category: categorySchema }).strict())
  .min(1);

/** Options of {@link createCategorizer}. */
export interface CategorizerOptions {
  /** Ordered rules, first match wins (default {@link DEFAULT_CATEGORY_RULES}). */
  rules?: readonly CategoryRule[];
  /** Category when no rule matches (default `general`). */
  fallback?: string;
}

/**
 * Builds the key → category function. Rules are checked once, here.
 * @throws ConfigError for an empty prefix, a bad category name, a duplicate prefix,
 *   or a rule that can never match because an earlier rule's prefix covers it.
 * @example
 * const categorize = createCategorizer();
 * categorize("reports/positive/q3.pdf"); // "positive"
 */
export function createCategorizer(options: CategorizerOptions = {}): (key: string) => string {
  const rules = options.rules ?? DEFAULT_CATEGORY_RULES;
  const fallback = options.fallback ?? DEFAULT_CATEGORY;
  const issues: string[] = [];
  const parsed = rulesSchema.safeParse(rules);
  if (!parsed.success) {
    for (const i of parsed.error.issues) issues.push(`rules.${i.path.join(".")}: ${i.message}`);
  }
  if (!categorySchema.safeParse(fallback).success) {
    issues.push(`fallback: ${String(JSON.stringify(fallback))} is not a lower-case slug`);
  }
  // Options come from code or from parsed configuration: anything may be here, and only
  // string prefixes can shadow each other.
  const prefixes = (Array.isArray(rules) ? (rules as unknown[]) : []).map((r) => {
    const prefix = typeof r === "object" && r !== null ? (r as { prefix?: unknown }).prefix : "";
    return typeof prefix === "string" ? prefix : "";
  });
  prefixes.forEach((prefix, i) => {
    const earlier = prefixes
      .slice(0, i)
      .findIndex((p) => p.length > 0 && prefix.length > 0 && prefix.startsWith(p));
    if (earlier >= 0) {
      issues.push(
        `rules.${i}: prefix ${JSON.stringify(prefix)} is shadowed by rule ${earlier} (${JSON.stringify(prefixes[earlier])}), so it never matches`,
      );
    }
  });
  if (issues.length > 0) throw new ConfigError("category rules", issues);
  const frozen = rules.map((r) => ({ ...r }));
  return (key) => frozen.find((r) => key.startsWith(r.prefix))?.category ?? fallback;
}

/**
 * Parses `CATEGORY_RULES`: a JSON array of `{ "prefix": …, "category": … }`, in order.
 * @throws ConfigError naming the variable when the text is not such an array
 */
export function parseCategoryRules(text: string, variable = "CATEGORY_RULES"): CategoryRule[] {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new ConfigError("category rules", [
      `${variable}: not valid JSON; expected [{"prefix":"reports/positive/","category":"positive"}, …]`,
    ]);
  }
  const parsed = rulesSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(
      "category rules",
      parsed.error.issues.map((i) => `${variable}[${i.path.join(".")}]: ${i.message}`),
    );
  }
  return parsed.data;
}
