/**
 * Routing: which channels a category goes to, and per channel what target (a Slack channel,
 * email recipients, …). Rules come from ROUTING_RULES (JSON) or ROUTING_FILE (a JSON file),
 * validated at start-up against the enabled channels. Without rules, every category goes to
 * every enabled channel: the default behaviour.
 *
 * ```json
 * { "categories": { "negative": { "channels": ["slack", "email"], "targets": { "slack": { "channel": "#incidents" } } } },
 *   "default": { "channels": ["slack"] } }
 * ```
 */
import { z } from "zod";
import { categorySchema } from "../../core/contract.ts";
import { ConfigError } from "./errors.ts";

/** Where one category goes. */
export interface Route {
  channels: string[];
  /** Per-channel settings for this category, read by the channel (e.g. `{ channel: "#x" }`). */
  targets: Record<string, Record<string, unknown>>;
}

/** Category → route. */
export type Router = (category: string) => Route;

const routeSchema = z
  .object({
    channels: z.array(z.string().min(1)).min(1, "at least one channel"),
    targets: z.record(z.string(), z.record(z.string(), z.unknown())).default({}),
  })
  .strict();

const rulesSchema = z
  .object({
    categories: z.record(categorySchema, routeSchema).default({}),
    default: routeSchema.optional(),
  })
  .strict();

/** Parsed routing rules. */
export type RoutingRules = z.output<typeof rulesSchema>;

/**
 * Parses routing rules from JSON text.
 * @param source where the text came from, for messages (e.g. `ROUTING_RULES`)
 * @throws ConfigError naming the source and each problem
 */
export function parseRoutingRules(text: string, source: string): RoutingRules {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new ConfigError("routing", [`${source}: not valid JSON`]);
  }
  const parsed = rulesSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(
      "routing",
      parsed.error.issues.map((i) => `${source}: ${i.path.join(".") || "(root)"}: ${i.message}`),
    );
  }
  return parsed.data;
}

/**
 * Builds the router over the enabled channels.
 * @throws ConfigError when a rule names a channel that is not enabled, or a target for a
 *   channel that the rule does not send to
 * @example
 * const route = createRouter({ enabled: ["log", "webhook"] });
 * route("positive").channels; // ["log", "webhook"]
 */
export function createRouter(options: {
  enabled: readonly string[];
  rules?: RoutingRules;
}): Router {
  const enabled = [...options.enabled];
  const rules = options.rules ?? { categories: {} };
  const issues: string[] = [];
  const check = (where: string, route: Route) => {
    for (const c of route.channels) {
      if (!enabled.includes(c)) {
        issues.push(`${where}.channels: ${c} is not in ENABLED_CHANNELS (${enabled.join(", ")})`);
      }
    }
    for (const t of Object.keys(route.targets)) {
      if (!route.channels.includes(t))
        issues.push(`${where}.targets.${t}: the route does not send to ${t}`);
    }
  };
  for (const [category, route] of Object.entries(rules.categories))
    check(`categories.${category}`, route);
  if (rules.default) check("default", rules.default);
  if (issues.length > 0) throw new ConfigError("routing", issues);
  const fallback: Route = rules.default ?? { channels: enabled, targets: {} };
  // A Map holds only the rules' own entries: a category named like a built-in object
  // property ("constructor", "toString") must never resolve to an inherited value.
  const byCategory = new Map<string, Route>(Object.entries(rules.categories));
  return (category) => byCategory.get(category) ?? fallback;
}
