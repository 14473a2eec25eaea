import { describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import type { Notification } from "../../core/contract.ts";
import { aNotification } from "../../test/support/notifications.ts";
import { loadEmailTemplates } from "./channels/email/render.ts";
import { loadSlackTemplates } from "./channels/slack/render.ts";
import { asIs, compileText, PLACEHOLDERS, valuesOf } from "./templates.ts";

/** Both channels' templates, as one folder serves them (each channel loads its own). */
function loadTemplates(dir?: string) {
  const issues: string[] = [];
  const load = <T>(f: () => T): T | undefined => {
    try {
      return f();
    } catch (err) {
      issues.push((err as Error).message);
      return undefined;
    }
  };
  const slack = load(() => loadSlackTemplates(dir));
  const email = load(() => loadEmailTemplates(dir));
  if (!slack || !email) throw new Error(issues.join("\n"));
  return {
    slack: slack.slack,
    slackDigest: slack.slackDigest,
    email: email.email,
    categories: () => [...new Set([...slack.categories(), ...email.categories()])].sort(),
  };
}

const templates = loadTemplates();

const fields = {
  eventId: "0123456789abcdef0123456789abcdef",
  size: 482113,
  eTag: "d41d8cd98f00b204e9800998ecf8427e",
  sequencer: "0055AED6DCD90281E5",
};
const base = aNotification({ ...fields, key: "reports/positive/Q3 실적 보고서.pdf" });

const withKey = (key: string, category = "general"): Notification =>
  aNotification({ ...fields, key, category });

describe("slack digest", () => {
  test("counts by category, lists the first ten with their category's line, counts the rest", () => {
    const ns = [
      ...Array.from({ length: 7 }, (_, i) => withKey(`reports/negative/n${i}.pdf`, "negative")),
      ...Array.from({ length: 5 }, (_, i) => withKey(`reports/positive/p${i}.pdf`, "positive")),
      withKey("misc/a.txt"),
    ];
    const m = templates.slackDigest(ns);
    expect(m.text).toBe("13 new uploads: 7 negative, 5 positive, 1 general");
    const blocks = m.blocks as { type: string; text?: { text: string }; elements?: unknown[] }[];
    expect(blocks.map((b) => b.type)).toEqual(["header", "section", "section", "context"]);
    const lines = (blocks[2]?.text?.text ?? "").split("\n");
    expect(lines).toHaveLength(10);
    expect(lines[0]).toStartWith("• ");
    expect(lines[0]).toContain("n0.pdf");
    expect(JSON.stringify(blocks[3]?.elements)).toContain("…and 3 more");
  });

  test("escapes file names for mrkdwn and has no 'more' line when everything is listed", () => {
    const m = templates.slackDigest([
      withKey("uploads/<!channel> & <b>.txt"),
      withKey("uploads/plain.txt"),
    ]);
    const listed = JSON.stringify(m.blocks);
    expect(listed).not.toContain("<!channel>");
    expect(listed).toContain("&lt;!channel&gt; &amp; &lt;b&gt;.txt");
    expect(listed).not.toContain("more");
    expect(m.text).toBe("2 new uploads: 2 general");
  });
});

describe("templates", () => {
  test("ship one per built-in category, plus the default", () => {
    expect(templates.categories()).toEqual(["general", "negative", "positive"]);
  });

  test.each(["positive", "negative", "general", "unknown-category"])(
    "render %s (snapshot)",
    (category) => {
      const n = { ...base, category };
      expect({ slack: templates.slack(n), email: templates.email(n) }).toMatchSnapshot();
    },
  );

  test("escape HTML in the key for email and Slack mrkdwn; plain text stays as it is", () => {
    const name = '<script>alert("x")</script> & <b>bold</b>.html';
    const n = { ...withKey("uploads/x.html"), fileName: name };
    const email = templates.email(n);
    expect(email.html).not.toContain("<script>");
    expect(email.html).toContain(
      "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;.html",
    );
    expect(email.text).toContain('<script>alert("x")</script> & <b>bold</b>.html');
    const slack = templates.slack(n);
    expect(slack.text).toContain("&lt;script&gt;");
    const plain = JSON.stringify(slack.blocks);
    // plain_text objects carry the name unescaped; Slack does not parse them.
    expect(plain).toContain('<script>alert(\\"x\\")</script> & <b>bold</b>.html');
    expect(templates.slack(n)).toMatchSnapshot();
  });

  test("cut a 1,000-character Korean file name to Slack's limits without breaking characters", () => {
    const name = `${"가나다라마바사아자차".repeat(100)}.pdf`;
    const n = withKey(`reports/negative/${name}`, "negative");
    const slack = templates.slack(n);
    for (const block of slack.blocks as { type: string; text?: { text: string } }[]) {
      if (block.type === "header")
        expect(Array.from(block.text?.text ?? "").length).toBeLessThanOrEqual(150);
      if (block.type === "section" && block.text) {
        expect(Array.from(block.text.text).length).toBeLessThanOrEqual(3000);
      }
    }
    expect(JSON.stringify(slack.blocks)).not.toContain("\uFFFD");
    const email = templates.email(n);
    expect(Array.from(email.subject).length).toBeLessThanOrEqual(200);
    expect(email.subject.endsWith("…")).toBe(true);
    expect(email.text).toContain(name);
  });

  test("drop the S3 button when its URL would exceed Slack's limit", () => {
    const n = withKey(`uploads/${"키".repeat(1500)}.txt`);
    const blocks = templates.slack(n).blocks as { type: string }[];
    expect(blocks.map((b) => b.type)).not.toContain("actions");
  });

  test("keep a key with line breaks out of the subject's structure", () => {
    const n = withKey("uploads/line\r\nBcc: victim@example.com.txt");
    expect(templates.email(n).subject).not.toMatch(/[\r\n]/);
  });

  test("refuse a folder without defaults, with bad JSON, or with unknown placeholders", () => {
    const dir = mkdtempSync(join(tmpdir(), "fanda-templates-"));
    mkdirSync(join(dir, "slack"));
    mkdirSync(join(dir, "email"));
    writeFileSync(join(dir, "slack", "positive.json"), "{ nope");
    writeFileSync(join(dir, "email", "positive.subject.txt"), "Hi {{recipientName}}");
    writeFileSync(join(dir, "email", "positive.html"), "<p>{{fileName}}</p>");
    writeFileSync(join(dir, "email", "positive.txt"), "{{fileName}}");
    let message = "";
    try {
      loadTemplates(dir);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain("positive.json: not valid JSON");
    expect(message).toContain("unknown placeholder {{recipientName}}");
    expect(message).toContain("default.json is required");
    expect(message).toContain("default.subject.txt, default.html and default.txt are required");
  });

  test("refuse a missing folder", () => {
    expect(() => loadTemplates(join(tmpdir(), `fanda-none-${crypto.randomUUID()}`))).toThrow(
      /missing template folder/,
    );
  });
});

describe("template engine", () => {
  test("placeholders named like built-in object properties render empty, never an inherited value", () => {
    const values = valuesOf(base);
    const text = compileText("a{{constructor}}b{{ toString }}c{{hasOwnProperty}}d{{valueOf}}e");
    expect(text(values, asIs)).toBe("abcde");
    // An escaping encoder gets strings only (a function would make it throw).
    expect(text(values, (s) => s.replace(/&/g, "&amp;"))).toBe("abcde");
    expect(compileText("{{fileName}}")(values, asIs)).toBe("Q3 실적 보고서.pdf");
  });
});

describe("template engine (properties)", () => {
  const INHERITED = Object.getOwnPropertyNames(Object.prototype);
  const name = fc.oneof(
    fc.constantFrom(...PLACEHOLDERS, ...INHERITED),
    fc.stringMatching(/^[A-Za-z][A-Za-z0-9]{0,8}$/),
  );
  /** Template text: literal pieces (anything, braces included) and placeholders. */
  const template = fc
    .array(
      fc.oneof(
        fc.string({ unit: "binary" }),
        fc.constantFrom("{", "}", "{{", "}}", "{{ }}", "{{1x}}"),
        name.map((n) => `{{${n}}}`),
        name.map((n) => `{{ ${n} }}`),
      ),
      { maxLength: 12 },
    )
    .map((parts) => parts.join(""));
  const values = fc.dictionary(name, fc.string({ unit: "binary" }));
  /** What the engine must produce: own values, everything else empty. */
  const reference = (text: string, v: Record<string, string>) =>
    text.replace(/\{\{\s*([A-Za-z][A-Za-z0-9]*)\s*\}\}/g, (_m, n: string) =>
      Object.hasOwn(v, n) ? (v[n] as string) : "",
    );

  test("any template text with any values renders to a string: own values only, the rest empty", () => {
    fc.assert(
      fc.property(template, values, (text, v) => {
        const rendered = compileText(text)(v, asIs);
        expect(typeof rendered).toBe("string");
        expect(rendered).toBe(reference(text, v));
        // An encoder that only takes strings never sees anything else.
        expect(compileText(text)(v, (s) => s.toUpperCase())).toBe(
          reference(
            text,
            Object.fromEntries(Object.entries(v).map(([k, x]) => [k, x.toUpperCase()])),
          ),
        );
      }),
      { numRuns: 500 },
    );
  });

  test("any notification field values give every placeholder a string; inherited names stay empty", () => {
    const inherited = INHERITED.filter((n) => /^[A-Za-z]/.test(n));
    const text = compileText(inherited.map((n) => `{{${n}}}`).join("|"));
    fc.assert(
      fc.property(
        fc.record({
          key: fc.string({ unit: "binary", minLength: 1 }),
          bucket: fc.string({ unit: "binary", minLength: 3, maxLength: 63 }),
          size: fc.option(fc.nat(), { nil: undefined }),
          eTag: fc.option(fc.string({ unit: "binary" }), { nil: undefined }),
          versionId: fc.option(fc.string({ unit: "binary" }), { nil: undefined }),
          eventName: fc.string({ unit: "binary" }),
          category: fc.stringMatching(/^[a-z][a-z0-9_-]{0,20}$/),
        }),
        (fields) => {
          const v = valuesOf(aNotification(fields));
          for (const p of PLACEHOLDERS) expect(typeof v[p]).toBe("string");
          expect(text(v, asIs)).toBe("|".repeat(inherited.length - 1));
        },
      ),
      { numRuns: 300 },
    );
  });
});
