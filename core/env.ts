/**
 * Environment parsing shared by every entry point: a zod object over `process.env`,
 * parsed once at start-up, empty strings treated as unset, every problem reported at once
 * and each one naming its variable. Values are never echoed (some are secrets).
 */
import { z } from "zod";
import { ConfigError } from "./errors.ts";

/** Environment as given to a process. */
export type Env = Record<string, string | undefined>;

/**
 * Checks across variables, run on the raw (trimmed, non-empty) values whether or not each
 * variable parsed, so that every problem is reported in one go. Returns `NAME: problem` lines.
 */
export type EnvCheck = (raw: Env) => string[];

/**
 * Parses `env` with `schema`, then runs `checks`.
 * @param scope what is being configured, for the error message (e.g. `"processor"`)
 * @throws ConfigError listing every invalid variable
 */
export function parseEnv<T extends z.ZodType>(
  schema: T,
  env: Env,
  scope: string,
  checks: readonly EnvCheck[] = [],
): z.output<T> {
  const cleaned: Env = {};
  for (const [k, v] of Object.entries(env)) {
    if (v !== undefined && v.trim() !== "") cleaned[k] = v.trim();
  }
  const parsed = schema.safeParse(cleaned);
  const issues: string[] = [];
  if (!parsed.success) {
    for (const i of parsed.error.issues) {
      const name = i.path.length > 0 ? String(i.path[0]) : "(environment)";
      const missing = i.code === "invalid_type" && cleaned[name] === undefined;
      issues.push(`${name}: ${missing ? "is required" : i.message}`);
    }
  }
  for (const check of checks) issues.push(...check(cleaned));
  if (issues.length > 0 || !parsed.success) throw new ConfigError(scope, issues);
  return parsed.data;
}

/** Splits a comma-separated variable into trimmed, non-empty items. */
export function splitList(value: string): string[] {
  return value
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item.length > 0);
}

const booleanWords = z.enum(["true", "false", "1", "0", "yes", "no"], {
  error: "expected true or false",
});
const toBoolean = (v: string) => v === "true" || v === "1" || v === "yes";

/** A boolean variable: `true|false|1|0|yes|no` (so `"false"` is false, unlike `Boolean()`). */
export const envBoolean = (defaultValue: boolean) =>
  booleanWords.default(defaultValue ? "true" : "false").transform(toBoolean);

/** A boolean variable without a default: undefined when unset. */
export const envOptionalBoolean = () =>
  booleanWords.optional().transform((v) => (v === undefined ? undefined : toBoolean(v)));

/** A TCP port variable, 0 (any free port) to 65535. */
export const envPort = (defaultValue: number) =>
  z.coerce
    .number({ error: "expected a port number" })
    .int("expected a whole port number")
    .min(0, "expected a port between 0 and 65535")
    .max(65535, "expected a port between 0 and 65535")
    .default(defaultValue);

/** An http(s) URL variable. */
export const envUrl = () =>
  z.url({ protocol: /^https?$/, error: "expected an http:// or https:// URL" });

/** `LOG_LEVEL`: debug, info, warn or error. */
export const envLogLevel = z
  .enum(["debug", "info", "warn", "error"], { error: "expected debug, info, warn or error" })
  .default("info");

/** A whole number of at least 1 (and at most `max`), with a default. */
export const envPositiveInt = (name: string, defaultValue: number, max = 3_600_000) =>
  z.coerce
    .number({ error: `expected a whole number (${name})` })
    .int("expected a whole number")
    .min(1, "expected at least 1")
    .max(max, `expected at most ${max}`)
    .default(defaultValue);
