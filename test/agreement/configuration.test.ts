/**
 * docs/configuration.md lists every environment variable the code reads, and nothing else.
 * Each rule also meets the mistake it exists for (an undocumented read, a documented variable
 * nothing reads) and must name it.
 */
// biome-ignore-all lint/suspicious/noTemplateCurlyInString: the fixtures are bash, where ${X:-…} is the syntax under test.
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { kafkaEnvShape } from "../../core/kafka.ts";
import { tracingEnvShape } from "../../core/tracing.ts";
import { CHANNEL_PLUGINS } from "../../processor/src/channels/index.ts";
import {
  bashReads,
  configurationProblems,
  documentedVariables,
  type Exemptions,
  ROOT,
  repositorySources,
  typeScriptReads,
  variablesRead,
} from "./configuration.ts";

const REFERENCE = join(ROOT, "docs", "configuration.md");

/** This check's own files: their fixture strings name variables on purpose. */
const SELF = ["test/agreement/configuration.ts", "test/agreement/configuration.test.ts"];

/**
 * Read by the code, but not configuration a user sets. Each with its reason.
 */
const NOT_CONFIGURATION = new Set([
  // The operating system's and shells' own: passed through to child processes.
  "PATH",
  "HOME",
  "TMPDIR",
  "LANG",
  // Set by CI providers; nothing here reads it to change behaviour.
  "CI",
  // Hand-offs from a parent to the child process it starts, inside one test or script
  // (producer/src/lambda.bundle.int.test.ts, scripts/kafka-access.ts).
  "EVENT",
  "FANDA_ACCESS_EVENT",
]);

/**
 * The OpenTelemetry OTLP exporter reads these itself (standard names, never by name in this
 * code); the reference documents them for the producer, the Lambda and the processor. Each
 * has a `_TRACES_` form too (OTEL_EXPORTER_OTLP_TRACES_HEADERS…), documented with it.
 */
const READ_BY_THE_OTEL_EXPORTER = [
  "OTEL_EXPORTER_OTLP_HEADERS",
  "OTEL_EXPORTER_OTLP_TIMEOUT",
  "OTEL_EXPORTER_OTLP_COMPRESSION",
  "OTEL_EXPORTER_OTLP_CERTIFICATE",
  "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
  "OTEL_EXPORTER_OTLP_CLIENT_KEY",
];

const EXEMPTIONS: Exemptions = {
  notConfiguration: NOT_CONFIGURATION,
  readByLibraries: new Set(READ_BY_THE_OTEL_EXPORTER),
};

const read = variablesRead(repositorySources(SELF));
const documented = documentedVariables(readFileSync(REFERENCE, "utf8"));

describe("docs/configuration.md", () => {
  test("documents every variable the code reads, and only those", () => {
    expect(configurationProblems(read, documented, EXEMPTIONS)).toEqual([]);
  });

  test("the scan finds every variable of the env shapes the entry points parse", () => {
    const shapes = [
      ...Object.keys(kafkaEnvShape),
      ...Object.keys(tracingEnvShape),
      ...Object.values(CHANNEL_PLUGINS).flatMap((p) => Object.keys(p.env)),
    ];
    expect(shapes.length).toBeGreaterThan(20);
    expect(shapes.filter((n) => !read.has(n))).toEqual([]);
  });

  test("the scan finds the processor's and the producer's own variables", () => {
    for (const name of ["PROCESSOR_CONCURRENCY", "KAFKA_GROUP_ID", "KUBERNETES_SERVICE_HOST"]) {
      expect(read.get(name)).toContain("processor/src/config.ts");
    }
    for (const name of ["CATEGORY_RULES", "PRODUCER_PORT"]) {
      expect(read.get(name)).toContain("producer/src/config.ts");
    }
    expect(read.get("_X_AMZN_TRACE_ID")).toContain("producer/src/lambda.ts");
    expect(read.get("KAFKA_HEAP")).toContain("scripts/stack");
    expect(read.get("REDIS_URL")).toContain("scripts/dev");
  });

  test("the variables the OTLP exporter reads itself are the installed exporter's", () => {
    const dir = join(ROOT, "node_modules", "@opentelemetry", "otlp-exporter-base", "dist");
    const text = (readdirSync(dir, { recursive: true }) as string[])
      .filter((f) => f.endsWith(".mjs"))
      .map((f) => readFileSync(join(dir, f), "utf8"))
      .join("\n");
    for (const name of READ_BY_THE_OTEL_EXPORTER) {
      expect(text).toContain(`"${name}"`);
      expect(text).toContain(`\`OTEL_EXPORTER_OTLP_\${signalIdentifier}_${name.slice(19)}\``);
      expect(documented.has(name)).toBe(true);
    }
  });
});

describe("the scan", () => {
  test("finds every way TypeScript reads a variable", () => {
    const text = [
      "const a = process.env.FANDA_A ?? 1;",
      'const b = process.env["FANDA_B"];',
      "const c = Bun.env.FANDA_C;",
      "const d = process.env?.FANDA_D;",
      "const shape = { FANDA_E: z.string(), FANDA_F: envPort(1), FANDA_G: envLogLevel,",
      "  FANDA_H: z",
      "    .string() };",
      "const check = (raw: Env) => (raw.FANDA_I ? [] : []);",
      "export const fandaEnvShape = { FANDA_J: protocol.optional(), nested: { FANDA_NOT_0: 1 } };",
      // Not reads: a value written for a child, a type, a constant.
      "run({ env: { FANDA_NOT_1: 'x' } }); type T = { FANDA_NOT_2: string }; const FANDA_NOT_3 = 1;",
    ].join("\n");
    expect([...typeScriptReads(text)].sort()).toEqual([
      "FANDA_A",
      "FANDA_B",
      "FANDA_C",
      "FANDA_D",
      "FANDA_E",
      "FANDA_F",
      "FANDA_G",
      "FANDA_H",
      "FANDA_I",
      "FANDA_J",
    ]);
  });

  test("finds what a bash script reads from its environment, not its own variables", () => {
    const script = [
      "#!/usr/bin/env bash",
      "# $FANDA_IN_A_COMMENT",
      "PORT=${PORT:-8080}",
      'OWN="$FANDA_CACHE/x"',
      'echo "$OWN $PORT $FANDA_BARE ${FANDA_SET_ELSEWHERE}"',
      "for ITEM in a b; do echo $ITEM; done",
      'echo "${PIPESTATUS[0]}"',
    ].join("\n");
    expect([...bashReads(script, new Set(["FANDA_SET_ELSEWHERE"]))].sort()).toEqual([
      "FANDA_BARE",
      "FANDA_CACHE",
      "PORT",
    ]);
  });

  test("a sourced bash file shares the variables of the script that sources it", () => {
    const lib = {
      path: "scripts/lib.sh",
      kind: "bash" as const,
      text: 'ROOT_DIR=/x\necho "$FANDA_Z"',
    };
    const main = {
      path: "scripts/main",
      kind: "bash" as const,
      text: '#!/usr/bin/env bash\n. "$(dirname "$0")/lib.sh"\necho "$ROOT_DIR"',
    };
    expect([...variablesRead([lib, main]).keys()]).toEqual(["FANDA_Z"]);
  });

  test("documented means named in the first cell of a table row", () => {
    const md = [
      "Prose naming `FANDA_PROSE` does not document it.",
      "| variable | default |",
      "|---|---|",
      "| `FANDA_ONE` / `FANDA_TWO` | `FANDA_IN_DEFAULT` |",
    ].join("\n");
    expect([...documentedVariables(md)].sort()).toEqual(["FANDA_ONE", "FANDA_TWO"]);
  });
});

describe("the check bites", () => {
  const none: Exemptions = { notConfiguration: new Set(), readByLibraries: new Set() };

  test("an undocumented variable in the code is named, with where it is read", () => {
    const source = {
      path: "processor/src/new.ts",
      kind: "typescript" as const,
      text: "const x = process.env.FANDA_UNDOCUMENTED_SETTING;",
    };
    expect(configurationProblems(variablesRead([source]), new Set(), none)).toEqual([
      "FANDA_UNDOCUMENTED_SETTING: read by processor/src/new.ts but not documented in docs/configuration.md",
    ]);
    const withTheReference = configurationProblems(
      variablesRead([...repositorySources(SELF), source]),
      documented,
      EXEMPTIONS,
    );
    expect(withTheReference).toEqual([
      "FANDA_UNDOCUMENTED_SETTING: read by processor/src/new.ts but not documented in docs/configuration.md",
    ]);
  });

  test("a documented variable nothing reads is named", () => {
    const stale = new Set([...documented, "FANDA_NO_LONGER_READ"]);
    expect(configurationProblems(read, stale, EXEMPTIONS)).toEqual([
      "FANDA_NO_LONGER_READ: documented in docs/configuration.md but read nowhere",
    ]);
  });

  test("an undocumented bash read is named", () => {
    const source = {
      path: "scripts/new",
      kind: "bash" as const,
      text: '#!/usr/bin/env bash\nX=${FANDA_SCRIPT_SETTING:-1}\necho "$X"',
    };
    expect(configurationProblems(variablesRead([source]), new Set(), none)).toEqual([
      "FANDA_SCRIPT_SETTING: read by scripts/new but not documented in docs/configuration.md",
    ]);
  });

  test("the exemptions are needed: without them the repository's own reads are reported", () => {
    const problems = configurationProblems(read, documented, {
      notConfiguration: new Set(),
      readByLibraries: new Set(),
    });
    expect(problems).toContain(
      "PATH: read by " +
        (read.get("PATH") ?? []).join(", ") +
        " but not documented in docs/configuration.md",
    );
    expect(problems).toContain(
      "OTEL_EXPORTER_OTLP_HEADERS: documented in docs/configuration.md but read nowhere",
    );
  });
});
