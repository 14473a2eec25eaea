import { describe, expect, test } from "bun:test";
import { replayJob, TEMPLATE } from "./replay-job.ts";
import { render } from "./validate-manifests.ts";

// biome-ignore lint/suspicious/noExplicitAny: Kubernetes objects of many shapes.
type Loose = Record<string, any>;

describe("replayJob", async () => {
  const { objects } = await render("overlays/dev");
  const cron = objects.find((o) => o.kind === "CronJob" && o.metadata?.name === TEMPLATE) as Loose;

  test("is the deployed template with the operator's options appended, under the replay identity", () => {
    const job = replayJob(
      cron,
      ["--reason", "delivery-failed", "--dry-run"],
      new Date("2026-12-01T10:20:30Z"),
    );
    expect(job.metadata).toMatchObject({
      name: "fanda-replay-20261201102030",
      namespace: "fanda-dev",
    });
    const pod = job.spec.template.spec;
    expect(pod.serviceAccountName).toBe("fanda-replay");
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(pod.containers[0].args).toEqual([
      "scripts/replay.ts",
      "--reason",
      "delivery-failed",
      "--dry-run",
    ]);
    expect(pod.containers[0].image).toBe(
      cron.spec.jobTemplate.spec.template.spec.containers[0].image,
    );
    expect(cron.spec.jobTemplate.spec.template.spec.containers[0].args).toEqual([
      "scripts/replay.ts",
    ]);
    expect(cron.spec.suspend).toBe(true);
  });

  test("refuses anything but the replay template, and options with line breaks", () => {
    expect(() => replayJob({ kind: "CronJob", metadata: { name: "other" } }, [])).toThrow(
      /expected the CronJob fanda-replay/,
    );
    expect(() => replayJob({ kind: "Job", metadata: { name: TEMPLATE } }, [])).toThrow();
    const broken = structuredClone(cron);
    broken.spec.jobTemplate.spec.template.spec.containers[0].name = "x";
    expect(() => replayJob(broken, [])).toThrow(/no replay container/);
    expect(() => replayJob(cron, ["--event-id", "a\nb"])).toThrow(/line break/);
  });
});
