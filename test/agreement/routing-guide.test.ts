/**
 * docs/routing.md stays true: its worked example's blocks (tagged `fanda:<name>` in their info
 * string) parse with the producer's and the processor's own configuration loaders, its
 * templates load and render with the real template engine, the rendered output it shows is
 * what the engine renders, and its placeholder table is the engine's list.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Notification } from "../../core/contract.ts";
import { loadEmailTemplates } from "../../processor/src/channels/email/render.ts";
import { loadSlackTemplates } from "../../processor/src/channels/slack/render.ts";
import { loadProcessorConfig } from "../../processor/src/config.ts";
import { createRouter } from "../../processor/src/routing.ts";
import { DEFAULT_TEMPLATES_DIR, PLACEHOLDERS } from "../../processor/src/templates.ts";
import { createCategorizer } from "../../producer/src/category.ts";
import { loadProducerConfig } from "../../producer/src/config.ts";
import { ROOT } from "./configuration.ts";

const guide = await Bun.file(join(ROOT, "docs", "routing.md")).text();

/** The guide's tagged code blocks: tag → content. */
function blocks(markdown: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of markdown.matchAll(/^```\w+ fanda:(\S+)\n([\s\S]*?)^```$/gm)) {
    out.set(m[1] as string, m[2] as string);
  }
  return out;
}

const tagged = blocks(guide);
const block = (tag: string): string => {
  const text = tagged.get(tag);
  if (text === undefined) throw new Error(`docs/routing.md has no block tagged fanda:${tag}`);
  return text;
};

const TEMPLATE_FILES = [
  "slack/invoice.json",
  "email/invoice.subject.txt",
  "email/invoice.txt",
  "email/invoice.html",
];

// The built-in templates plus the guide's, as step 3 says.
const templatesDir = mkdtempSync(join(tmpdir(), "fanda-routing-guide-"));
cpSync(DEFAULT_TEMPLATES_DIR, templatesDir, { recursive: true });
for (const file of TEMPLATE_FILES) writeFileSync(join(templatesDir, file), block(file));
afterAll(() => rmSync(templatesDir, { recursive: true, force: true }));

/** The upload the guide renders. */
const invoice: Notification = {
  schemaVersion: 1,
  eventId: "0123456789abcdef0123456789abcdef",
  fileName: "ACME <Q4> & Co.pdf",
  bucketName: "fanda-uploads",
  objectKey: "finance/invoices/2026-11/ACME <Q4> & Co.pdf",
  uploadTime: "2026-11-30T09:15:00.000Z",
  s3Url: "s3://fanda-uploads/finance/invoices/2026-11/ACME <Q4> & Co.pdf",
  category: "invoice",
  size: 248_832,
  eTag: "9b2cf535f27731c974343645a3985328",
  versionId: "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY",
  sequencer: "0062E99A88DC407460",
  eventName: "ObjectCreated:Put",
};

describe("docs/routing.md, worked example", () => {
  test("the category rules load as the producer loads them and classify the example", () => {
    const config = loadProducerConfig({ CATEGORY_RULES: block("category-rules") });
    const categorize = createCategorizer({ rules: config.categoryRules });
    expect(categorize(invoice.objectKey)).toBe("invoice");
    expect(categorize("reports/positive/q3.pdf")).toBe("positive");
    expect(categorize("reports/negative/q3.pdf")).toBe("negative");
    expect(categorize("uploads/photo.png")).toBe("general");
  });

  test("the routing rules load as the processor loads them and route as the guide says", () => {
    const config = loadProcessorConfig({
      ENABLED_CHANNELS: "slack,email,webhook",
      SLACK_BOT_TOKEN: "xoxb-guide",
      SES_FROM: "fanda@example.com",
      AWS_REGION: "ap-northeast-2",
      WEBHOOK_URL: "https://hooks.example.com/fanda",
      ROUTING_RULES: block("routing"),
      TEMPLATES_DIR: templatesDir,
    });
    if (!config.routing) throw new Error("no routing rules loaded");
    const route = createRouter({ enabled: config.channels, rules: config.routing });
    expect(route("invoice")).toEqual({
      channels: ["slack", "email", "webhook"],
      targets: {
        slack: { channel: "#finance" },
        email: { to: ["accounts-payable@example.com"] },
      },
    });
    expect(route("negative").targets).toEqual({ slack: { channel: "#incidents" } });
    for (const other of ["positive", "general"]) {
      expect(route(other)).toEqual({ channels: ["slack"], targets: {} });
    }
  });

  test("the email text template uses every placeholder", () => {
    const text = block("email/invoice.txt");
    expect(PLACEHOLDERS.filter((p) => !text.includes(`{{${p}}}`))).toEqual([]);
  });

  test("the templates load, and the email renders exactly as the guide shows", () => {
    const email = loadEmailTemplates(templatesDir);
    expect(email.categories()).toContain("invoice");
    const rendered = email.email(invoice);
    expect(rendered.subject).toBe(block("rendered/subject").trimEnd());
    expect(rendered.text).toBe(block("rendered/text"));
    expect(rendered.html).toContain("<td>ACME &lt;Q4&gt; &amp; Co.pdf</td>");
    expect(guide).toContain("the file name reads `ACME &lt;Q4&gt; &amp; Co.pdf`");
  });

  test("the Slack template renders with mrkdwn escaped and plain text as is", () => {
    const slack = loadSlackTemplates(templatesDir);
    expect(slack.categories()).toContain("invoice");
    const message = slack.slack(invoice);
    expect(message.text).toBe(
      ":receipt: Invoice received: ACME &lt;Q4&gt; &amp; Co.pdf (s3://fanda-uploads/finance/invoices/2026-11/ACME &lt;Q4&gt; &amp; Co.pdf)",
    );
    const json = JSON.stringify(message.blocks);
    expect(json).toContain('"text":"ACME <Q4> & Co.pdf"');
    expect(json).toContain('"text":"*Version*\\n3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY"');
    expect(json).toContain(
      '"url":"https://s3.console.aws.amazon.com/s3/object/fanda-uploads?prefix=finance%2Finvoices%2F2026-11%2FACME%20%3CQ4%3E%20%26%20Co.pdf"',
    );
  });
});

describe("docs/routing.md, reference", () => {
  test("the placeholder table lists exactly the engine's placeholders", () => {
    const table = [...guide.matchAll(/^\| `\{\{(\w+)\}\}` \|/gm)].map((m) => m[1]);
    expect(table).toEqual([...PLACEHOLDERS]);
  });

  test("every tagged block the test reads is in the guide", () => {
    expect([...tagged.keys()].sort()).toEqual(
      [...TEMPLATE_FILES, "category-rules", "routing", "rendered/subject", "rendered/text"].sort(),
    );
  });
});
