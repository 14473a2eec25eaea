/**
 * fast-check arbitraries for hostile input, shared by the property tests at every input
 * boundary: built-in property names as keys and values, huge and odd-Unicode strings,
 * wrong types, and mutations of a valid document at any depth (nested JSON strings included).
 */
import fc from "fast-check";

/** Every property name an object inherits: what a lookup keyed by data must never return. */
export const PROTOTYPE_NAMES: readonly string[] = Object.getOwnPropertyNames(Object.prototype);

/** Strings an attacker or a broken client sends. */
export const hostileString: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(...PROTOTYPE_NAMES, "", " ", "null", "undefined", "NaN", "%", "%zz", "+"),
  fc.string(),
  fc.string({ unit: "binary" }),
  fc.string({ unit: "grapheme" }),
  fc.constantFrom("\ud800", "a\udc00b", "\u0000", "\u202e", "\ufeff", "e\u0301", "😀".repeat(300)),
  fc.nat({ max: 2048 }).map((n) => "k".repeat(n)),
  fc.constantFrom(1, 2, 3, 62, 63, 64, 1023, 1024, 1025).map((n) => "b".repeat(n)),
);

/** Any JSON-ish value, hostile strings and keys included. */
export const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  hostileString,
  fc.constantFrom(null, true, false, 0, -0, -1, 1.5, 1e300, -1e300, Number.MAX_SAFE_INTEGER + 2),
  fc.jsonValue({ maxDepth: 2 }),
  fc.array(fc.tuple(hostileString, fc.jsonValue({ maxDepth: 1 })), { maxLength: 3 }).map(ownObject),
);

/** An object with exactly these own properties (`__proto__` too, as JSON.parse makes it). */
export function ownObject(
  entries: readonly (readonly [string, unknown])[],
): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (const [k, v] of entries) {
    Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
  }
  return o;
}

type Path = (string | number | { json: true })[];

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** Every path in a document, descending into strings that hold a JSON object or array. */
function pathsOf(doc: unknown, prefix: Path = []): Path[] {
  const out: Path[] = [prefix];
  if (Array.isArray(doc)) {
    for (const [i, v] of doc.entries()) out.push(...pathsOf(v, [...prefix, i]));
  } else if (isPlainObject(doc)) {
    for (const [k, v] of Object.entries(doc)) out.push(...pathsOf(v, [...prefix, k]));
  } else if (typeof doc === "string" && /^\s*[[{]/.test(doc)) {
    try {
      out.push(...pathsOf(JSON.parse(doc), [...prefix, { json: true }]).slice(1));
    } catch {}
  }
  return out;
}

/** A copy of `doc` with `path` replaced by `value`, or, with `addKey`, a key added there. */
function mutate(doc: unknown, path: Path, value: unknown, addKey?: string): unknown {
  if (path.length === 0) {
    if (addKey !== undefined && isPlainObject(doc)) {
      return ownObject([...Object.entries(doc), [addKey, value]]);
    }
    return value;
  }
  const [head, ...rest] = path;
  if (typeof head === "object") {
    return JSON.stringify(mutate(JSON.parse(doc as string), rest, value, addKey));
  }
  if (Array.isArray(doc)) {
    return doc.map((v, i) => (i === head ? mutate(v, rest, value, addKey) : v));
  }
  if (isPlainObject(doc)) {
    return ownObject(
      Object.entries(doc).map(([k, v]) => [k, k === head ? mutate(v, rest, value, addKey) : v]),
    );
  }
  return doc;
}

/**
 * A valid document changed in one to three places: a value replaced by a hostile one, a key
 * (often a built-in property name) added, or a field removed (replaced by undefined).
 */
export function mutationsOf(doc: unknown): fc.Arbitrary<unknown> {
  const step = (d: unknown) => {
    const paths = pathsOf(d);
    return fc
      .tuple(
        fc.nat({ max: paths.length - 1 }),
        fc.oneof(hostileValue, fc.constant(undefined)),
        fc.option(hostileString, { nil: undefined }),
      )
      .map(([i, value, addKey]) => mutate(d, paths[i] as Path, value, addKey));
  };
  return fc
    .integer({ min: 1, max: 3 })
    .chain((n) => {
      let arb: fc.Arbitrary<unknown> = step(doc);
      for (let i = 1; i < n; i++) arb = arb.chain(step);
      return arb;
    })
    .map((d) => (d === undefined ? d : JSON.parse(JSON.stringify(d))));
}
