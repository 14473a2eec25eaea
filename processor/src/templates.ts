/**
 * Message templates per category, loaded from files once at start-up (`processor/templates`
 * by default, `TEMPLATES_DIR` to override):
 *
 *   slack/<category>.json              Block Kit blocks plus a plain-text `text` fallback
 *   email/<category>.subject.txt       subject line
 *   email/<category>.html / .txt       bodies
 *
 * `default.*` serves categories without their own files. Placeholders are `{{name}}` with the
 * names in {@link PLACEHOLDERS}; nothing else is evaluated. Values are escaped for where they
 * land — HTML in .html, Slack mrkdwn in mrkdwn text, nothing in plain text — and cut to the
 * provider's limits, because a file name can contain anything, at any length.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Notification } from "../../core/contract.ts";
import { ConfigError } from "./errors.ts";
import { escapeHtml } from "./text.ts";

/** Every placeholder a template may use. */
export const PLACEHOLDERS = [
  "fileName",
  "objectKey",
  "bucketName",
  "category",
  "uploadTime",
  "s3Url",
  "consoleUrl",
  "size",
  "eventName",
  "eventId",
  "eTag",
  "versionId",
] as const;

type Placeholder = (typeof PLACEHOLDERS)[number];

/** A Slack message: fallback text and Block Kit blocks. */
export interface SlackMessage {
  text: string;
  blocks: unknown[];
}

/** An email's parts. */
export interface EmailMessage {
  subject: string;
  html: string;
  text: string;
}

/** Loaded templates. */
export interface Templates {
  slack(n: Notification): SlackMessage;
  /**
   * One Slack message for several notifications (digest mode): a count by category and, for
   * the first {@link DIGEST_LINES}, each category's own fallback line.
   */
  slackDigest(ns: readonly Notification[]): SlackMessage;
  email(n: Notification): EmailMessage;
  /** Categories with their own templates (the rest use `default`). */
  categories(): string[];
}

/** How many notifications a Slack digest lists one by one; the rest are counted. */
export const DIGEST_LINES = 10;

/** Default template folder, next to the processor's sources. */
export const DEFAULT_TEMPLATES_DIR = fileURLToPath(new URL("../templates", import.meta.url));

const PLACEHOLDER = /\{\{\s*([A-Za-z][A-Za-z0-9]*)\s*\}\}/g;

/** Slack's mrkdwn control characters, per its "escaping text" guide. */
const escapeMrkdwn = (s: string) =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** Cuts text to `max` characters (by code point), marking the cut. */
function cut(s: string, max: number): string {
  if (s.length <= max) return s; // code points never outnumber UTF-16 units
  const chars = Array.from(s);
  return chars.length <= max ? s : `${chars.slice(0, max - 1).join("")}…`;
}

function humanSize(bytes: number | undefined): string {
  if (bytes === undefined) return "unknown";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${bytes} B` : `${v.toFixed(1)} ${units[u]}`;
}

/** The values a notification gives its placeholders. */
export function valuesOf(n: Notification): Record<Placeholder, string> {
  return {
    fileName: n.fileName,
    objectKey: n.objectKey,
    bucketName: n.bucketName,
    category: n.category,
    uploadTime: n.uploadTime,
    s3Url: n.s3Url,
    // toWellFormed: a lone surrogate (possible in a JSON string) would make encodeURIComponent throw.
    consoleUrl: `https://s3.console.aws.amazon.com/s3/object/${encodeURIComponent(n.bucketName.toWellFormed())}?prefix=${encodeURIComponent(n.objectKey.toWellFormed())}`,
    size: humanSize(n.size),
    eventName: n.eventName,
    eventId: n.eventId,
    eTag: n.eTag ?? "",
    versionId: n.versionId ?? "",
  };
}

type Values = Record<string, string>;
type Encode = (s: string) => string;

/**
 * Compiles a text with {{placeholders}} once, at load: rendering a message then joins literal
 * parts and encoded values instead of running the placeholder pattern over every string.
 */
function compileText(template: string): (values: Values, encode: Encode) => string {
  const literals: string[] = [];
  const names: string[] = [];
  let last = 0;
  for (const m of template.matchAll(PLACEHOLDER)) {
    literals.push(template.slice(last, m.index));
    names.push(m[1] ?? "");
    last = m.index + m[0].length;
  }
  if (names.length === 0) return () => template;
  literals.push(template.slice(last));
  return (values, encode) => {
    let out = literals[0] ?? "";
    for (let i = 0; i < names.length; i++) {
      out += encode(values[names[i] as string] ?? "") + literals[i + 1];
    }
    return out;
  };
}

const asIs: Encode = (s) => s;

function checkPlaceholders(text: string, where: string, issues: string[]) {
  for (const m of text.matchAll(PLACEHOLDER)) {
    if (!(PLACEHOLDERS as readonly string[]).includes(m[1] ?? "")) {
      issues.push(`${where}: unknown placeholder {{${m[1]}}} (known: ${PLACEHOLDERS.join(", ")})`);
    }
  }
}

// Slack's limits: header text 150, other text objects 3000, button URL 3000, fallback 40000.
const SLACK_LIMITS = { header: 150, text: 3000, url: 3000, fallback: 4000 };

/**
 * Compiles one Block Kit node into its renderer: strings are filled and escaped by the text
 * object they are in and cut to Slack's limits; a button whose URL would be too long is
 * dropped, and so is an actions block left without elements.
 */
function compileSlack(
  node: unknown,
  context: { type?: string; parent?: string },
): (values: Values) => unknown {
  if (typeof node === "string") {
    const text = compileText(node);
    const encode = context.type === "mrkdwn" ? escapeMrkdwn : asIs;
    const max = context.parent === "header" ? SLACK_LIMITS.header : SLACK_LIMITS.text;
    return (values) => cut(text(values, encode), max);
  }
  if (Array.isArray(node)) {
    const items = node.map((n) => compileSlack(n, context));
    return (values) => items.map((render) => render(values)).filter((n) => n !== undefined);
  }
  if (node && typeof node === "object") {
    const o = node as Record<string, unknown>;
    const childContext = {
      ...(typeof o.type === "string" ? { type: o.type } : {}),
      ...(context.type === "header" || o.type === "header" ? { parent: "header" } : {}),
    };
    const fields = Object.entries(o).map(([k, v]) => {
      if (k === "url" && typeof v === "string") {
        const url = compileText(v);
        // A URL Slack would reject is left out rather than failing the whole message.
        return { k, url: (values: Values) => url(values, asIs) };
      }
      return { k, render: compileSlack(v, childContext) };
    });
    const isButton = o.type === "button" && typeof o.url === "string";
    return (values) => {
      const out: Record<string, unknown> = {};
      for (const f of fields) {
        if (f.url) {
          const url = f.url(values);
          if (url.length <= SLACK_LIMITS.url) out[f.k] = url;
          // A button without its URL would do nothing: drop it.
          else if (isButton) return undefined;
        } else {
          out[f.k] = f.render(values);
        }
      }
      // An actions block whose buttons all went is not valid Block Kit.
      if (out.type === "actions" && Array.isArray(out.elements) && out.elements.length === 0) {
        return undefined;
      }
      return out;
    };
  }
  return () => node;
}

/**
 * Loads and checks every template in `dir`.
 * @throws ConfigError listing missing defaults, unreadable or invalid files and unknown
 *   placeholders
 * @example
 * const templates = loadTemplates();
 * templates.email(notification).subject;
 */
export function loadTemplates(dir: string = DEFAULT_TEMPLATES_DIR): Templates {
  const issues: string[] = [];
  const read = (path: string): string | undefined => {
    try {
      return readFileSync(path, "utf8");
    } catch (err) {
      issues.push(`${path}: cannot read (${(err as NodeJS.ErrnoException).code ?? "error"})`);
      return undefined;
    }
  };
  const list = (sub: string) => {
    try {
      return readdirSync(join(dir, sub));
    } catch {
      issues.push(`${join(dir, sub)}: missing template folder`);
      return [];
    }
  };
  type SlackTemplate = { text: (v: Values, e: Encode) => string; blocks: (v: Values) => unknown };
  const slack = new Map<string, SlackTemplate>();
  for (const file of list("slack").filter((f) => f.endsWith(".json"))) {
    const path = join(dir, "slack", file);
    const raw = read(path);
    if (raw === undefined) continue;
    checkPlaceholders(raw, path, issues);
    try {
      const parsed = JSON.parse(raw) as { text?: unknown; blocks?: unknown };
      if (typeof parsed.text !== "string" || !Array.isArray(parsed.blocks)) {
        issues.push(`${path}: expected {"text": string, "blocks": [...]}`);
        continue;
      }
      slack.set(file.slice(0, -".json".length), {
        text: compileText(parsed.text),
        blocks: compileSlack(parsed.blocks, {}),
      });
    } catch {
      issues.push(`${path}: not valid JSON`);
    }
  }
  type EmailTemplate = { [K in keyof EmailMessage]: (v: Values, e: Encode) => string };
  const email = new Map<string, EmailTemplate>();
  const emailFiles = list("email");
  const emailCategories = new Set(
    emailFiles
      .filter((f) => f.endsWith(".subject.txt"))
      .map((f) => f.slice(0, -".subject.txt".length)),
  );
  for (const category of emailCategories) {
    const parts = ["subject.txt", "html", "txt"].map((ext) => {
      const path = join(dir, "email", `${category}.${ext}`);
      const text = read(path);
      if (text !== undefined) checkPlaceholders(text, path, issues);
      return text;
    });
    const [subject, html, text] = parts;
    if (subject !== undefined && html !== undefined && text !== undefined) {
      email.set(category, {
        subject: compileText(subject.trim()),
        html: compileText(html),
        text: compileText(text),
      });
    }
  }
  if (!slack.has("default")) issues.push(`${join(dir, "slack")}: default.json is required`);
  if (!email.has("default"))
    issues.push(
      `${join(dir, "email")}: default.subject.txt, default.html and default.txt are required`,
    );
  if (issues.length > 0) throw new ConfigError("templates", issues);
  /** The category's Slack template, or the default one. */
  const slackTemplateOf = (category: string) =>
    slack.get(category) ?? (slack.get("default") as SlackTemplate);

  return {
    slack(n) {
      const t = slackTemplateOf(n.category);
      const values = valuesOf(n);
      return {
        text: cut(t.text(values, escapeMrkdwn), SLACK_LIMITS.fallback),
        blocks: t.blocks(values) as unknown[],
      };
    },
    slackDigest(ns) {
      const counts = new Map<string, number>();
      for (const n of ns) counts.set(n.category, (counts.get(n.category) ?? 0) + 1);
      const summary = [...counts]
        .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
        .map(([category, count]) => `${count} ${category}`)
        .join(", ");
      const lines = ns.slice(0, DIGEST_LINES).map((n) => {
        const t = slackTemplateOf(n.category);
        return `• ${cut(t.text(valuesOf(n), escapeMrkdwn), 280)}`;
      });
      const more = ns.length - lines.length;
      const heading = `${ns.length} new uploads`;
      return {
        text: cut(`${heading}: ${summary}`, SLACK_LIMITS.fallback),
        blocks: [
          { type: "header", text: { type: "plain_text", text: heading, emoji: true } },
          { type: "section", text: { type: "mrkdwn", text: cut(escapeMrkdwn(summary), 3000) } },
          { type: "section", text: { type: "mrkdwn", text: cut(lines.join("\n"), 3000) } },
          ...(more > 0
            ? [{ type: "context", elements: [{ type: "mrkdwn", text: `…and ${more} more` }] }]
            : []),
        ],
      };
    },
    email(n) {
      const t = email.get(n.category) ?? (email.get("default") as EmailTemplate);
      const values = valuesOf(n);
      // Subjects are one line: a key with line breaks must not inject headers or lines.
      const subject = cut(
        t.subject(values, (s) => s.replace(/[\r\n]+/g, " ")),
        200,
      );
      return {
        subject,
        html: t.html(values, escapeHtml),
        text: t.text(values, asIs),
      };
    },
    categories: () =>
      [...new Set([...slack.keys(), ...email.keys()])].filter((c) => c !== "default").sort(),
  };
}
