/** The repository's import rules hold, and each one names the import that breaks it. */
import { describe, expect, test } from "bun:test";
import {
  type Edge,
  importGraph,
  isChannelPlugin,
  isRuntime,
  RULES,
  violations,
} from "./imports.ts";

const rule = (start: string) => {
  const r = RULES.find((x) => x.name.startsWith(start));
  if (!r) throw new Error(`no rule ${start}`);
  return r;
};

describe("import rules", () => {
  const graph = importGraph();

  test("the graph covers the code (every part imports something)", () => {
    for (const part of [
      "core/",
      "producer/src/",
      "processor/src/",
      "scripts/",
      "infra/",
      "kustomize/",
      "test/",
    ])
      expect(graph.some((e) => e.from.startsWith(part))).toBe(true);
  });

  test.each(RULES.map((r) => [r.name, r]))("%s", (_name, r) => {
    expect(violations(r, graph)).toEqual([]);
  });

  describe("each rule names a deliberately wrong import", () => {
    const broken = (edges: Edge[]) => (start: string) =>
      violations(rule(start), [...graph, ...edges]);

    test("the processor importing the producer, and the producer the processor", () => {
      const v = broken([
        { from: "processor/src/dispatch.ts", to: "producer/src/category.ts" },
        { from: "producer/src/lambda.ts", to: "processor/src/routing.ts" },
      ])("producer and processor");
      expect(v).toEqual([
        "processor/src/dispatch.ts -> producer/src/category.ts",
        "producer/src/lambda.ts -> processor/src/routing.ts",
      ]);
    });

    test("core importing the producer", () => {
      expect(
        broken([{ from: "core/log.ts", to: "producer/src/config.ts" }])("core imports"),
      ).toEqual(["core/log.ts -> producer/src/config.ts"]);
    });

    test("a kustomize test that loads runtime code through a script", () => {
      const v = broken([{ from: "scripts/env-sync.ts", to: "test/support/local.ts" }])(
        "infra/ and kustomize/",
      );
      expect(
        v.some(
          (p) =>
            p.startsWith("kustomize/src/manifests.test.ts -> ") &&
            p.includes("test/support/local.ts -> core/"),
        ),
      ).toBe(true);
    });

    test("a runtime module importing a script or test support", () => {
      expect(
        broken([{ from: "processor/src/main.ts", to: "scripts/wait.ts" }])("no runtime module"),
      ).toEqual(["processor/src/main.ts -> scripts/wait.ts"]);
      expect(isRuntime("processor/src/main.ts")).toBe(true);
      expect(isRuntime("processor/src/dispatch.test.ts")).toBe(false);
      expect(isRuntime("processor/src/channels/testing.ts")).toBe(false);
      expect(isChannelPlugin("processor/src/channels/slack/index.ts")).toBe(true);
      expect(isChannelPlugin("processor/src/channels/slack/slack.test.ts")).toBe(false);
    });

    test("a channel plugin importing the registry or the processor's internals", () => {
      expect(
        broken([
          { from: "processor/src/channels/slack/slack.ts", to: "processor/src/channels/index.ts" },
          { from: "processor/src/channels/webhook/index.ts", to: "processor/src/dispatch.ts" },
          {
            from: "processor/src/channels/email/email.ts",
            to: "processor/src/channels/slack/slack.ts",
          },
        ])("channel plugins"),
      ).toEqual([
        "processor/src/channels/slack/slack.ts -> processor/src/channels/index.ts",
        "processor/src/channels/webhook/index.ts -> processor/src/dispatch.ts",
        "processor/src/channels/email/email.ts -> processor/src/channels/slack/slack.ts",
      ]);
    });

    test("an import of a file that does not exist", () => {
      expect(
        broken([{ from: "core/kafka.ts", to: "missing:./gone.ts" }])("every relative import"),
      ).toEqual(["core/kafka.ts -> missing:./gone.ts"]);
    });
  });
});
