/**
 * Command-line options of the benchmarks and the chaos run: each checked against its range or
 * its allowed values, and every problem reported at once, before anything is started.
 */
import { parseArgs } from "node:util";

/** An integer option's value and its allowed range. */
export interface IntSpec {
  value: string | undefined;
  min: number;
  max: number;
}

/** A comma-separated list option's value and the items it may hold. */
export interface ListSpec {
  value: string | undefined;
  allowed: readonly string[];
  /** Exactly one item (a choice, not a list). */
  single?: boolean;
}

/** Thrown with every problem found, one per line, each naming its `--option`. */
export class UsageError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join("\n"));
    this.name = "UsageError";
  }
}

/**
 * Checks integer options and list options.
 * @returns the parsed integers and de-duplicated lists, keyed like the specs
 * @throws UsageError naming every bad option
 */
export function checkOptions<I extends string, L extends string>(
  ints: Record<I, IntSpec>,
  lists: Record<L, ListSpec> = {} as Record<L, ListSpec>,
): { ints: Record<I, number>; lists: Record<L, string[]> } {
  const problems: string[] = [];
  const outInts = {} as Record<I, number>;
  for (const [name, spec] of Object.entries(ints) as [I, IntSpec][]) {
    const v = Number(spec.value);
    if (spec.value === undefined || spec.value.trim() === "" || !Number.isInteger(v)) {
      problems.push(`--${name}: expected a whole number, got ${JSON.stringify(spec.value ?? "")}`);
    } else if (v < spec.min || v > spec.max) {
      problems.push(`--${name}: expected ${spec.min} to ${spec.max}, got ${v}`);
    }
    outInts[name] = v;
  }
  const outLists = {} as Record<L, string[]>;
  for (const [name, spec] of Object.entries(lists) as [L, ListSpec][]) {
    const items = [...new Set((spec.value ?? "").split(",").map((s) => s.trim()))].filter(
      (s) => s.length > 0,
    );
    const unknown = items.filter((s) => !spec.allowed.includes(s));
    if (items.length === 0 || unknown.length > 0 || (spec.single && items.length > 1)) {
      const expected = spec.single ? "one of" : "a comma-separated list of";
      problems.push(
        `--${name}: expected ${expected} ${spec.allowed.join(", ")}, got ${JSON.stringify(spec.value ?? "")}`,
      );
    }
    outLists[name] = items;
  }
  if (problems.length > 0) throw new UsageError(problems);
  return { ints: outInts, lists: outLists };
}

/** `parseArgs` with string options only; an unknown option or a missing value is a UsageError. */
export function parseOptions<K extends string>(
  options: Record<K, { default?: string }>,
  args: string[] = process.argv.slice(2),
): Partial<Record<K, string>> {
  try {
    const spec = Object.fromEntries(
      Object.entries(options).map(([k, o]) => [k, { type: "string" as const, ...(o as object) }]),
    );
    return parseArgs({ args, options: spec, strict: true }).values as Record<K, string | undefined>;
  } catch (err) {
    throw new UsageError([(err as Error).message]);
  }
}

/** Runs `check`; on a UsageError prints its problems and exits 2 (bad usage). */
export function orExit<T>(check: () => T): T {
  try {
    return check();
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(err.message);
    process.exit(2);
  }
}
