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
import type { Notification } from "../../producer/src/contract.ts";
import { ConfigError } from "./errors.ts";

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
  email(n: Notification): EmailMessage;
  /** Categories with their own templates (the rest use `default`). */
  categories(): string[];
}

/** Default template folder, next to the processor's sources. */
export const DEFAULT_TEMPLATES_DIR = fileURLToPath(new URL("../templates", import.meta.url));

const PLACEHOLDER = /\{\{\s*([A-Za-z][A-Za-z0-9]*)\s*\}\}/g;

const escapeHtml = (s: string) =>
  s
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");

/** Slack's mrkdwn control characters, per its "escaping text" guide. */
const escapeMrkdwn = (s: string) =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** Cuts text to `max` characters (by code point), marking the cut. */
function cut(s: string, max: number): string {
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
    consoleUrl: `https://s3.console.aws.amazon.com/s3/object/${encodeURIComponent(n.bucketName)}?prefix=${encodeURIComponent(n.objectKey)}`,
    size: humanSize(n.size),
    eventName: n.eventName,
    eventId: n.eventId,
    eTag: n.eTag ?? "",
    versionId: n.versionId ?? "",
  };
}

function fill(template: string, values: Record<string, string>, encode: (s: string) => string) {
  return template.replace(PLACEHOLDER, (_m, name: string) => encode(values[name] ?? ""));
}

function checkPlaceholders(text: string, where: string, issues: string[]) {
  for (const m of text.matchAll(PLACEHOLDER)) {
    if (!(PLACEHOLDERS as readonly string[]).includes(m[1] ?? "")) {
      issues.push(`${where}: unknown placeholder {{${m[1]}}} (known: ${PLACEHOLDERS.join(", ")})`);
    }
  }
}

// Slack's limits: header text 150, other text objects 3000, button URL 3000, fallback 40000.
const SLACK_LIMITS = { header: 150, text: 3000, url: 3000, fallback: 4000 };

/** Renders one Block Kit node: strings filled and escaped by the text object they are in. */
function renderSlack(
  node: unknown,
  values: Record<string, string>,
  context: { type?: string; parent?: string },
): unknown {
  if (typeof node === "string") {
    const mrkdwn = context.type === "mrkdwn";
    const text = fill(node, values, mrkdwn ? escapeMrkdwn : (s) => s);
    return cut(text, context.parent === "header" ? SLACK_LIMITS.header : SLACK_LIMITS.text);
  }
  if (Array.isArray(node)) return node.map((n) => renderSlack(n, values, context));
  if (node && typeof node === "object") {
    const o = node as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(o)) {
      if (k === "url" && typeof v === "string") {
        const url = fill(v, values, (s) => s);
        // A URL Slack would reject is left out rather than failing the whole message.
        if (url.length <= SLACK_LIMITS.url) out[k] = url;
        continue;
      }
      out[k] = renderSlack(v, values, {
        ...(typeof o.type === "string" ? { type: o.type } : {}),
        ...(context.type === "header" || o.type === "header" ? { parent: "header" } : {}),
      });
    }
    // A button without its URL would do nothing: drop it.
    if (o.type === "button" && typeof o.url === "string" && !("url" in out)) return undefined;
    return out;
  }
  return node;
}

const compact = (node: unknown): unknown => {
  if (Array.isArray(node)) return node.map(compact).filter((n) => n !== undefined);
  if (node && typeof node === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(node)) out[k] = compact(v);
    // An actions block whose buttons all went is not valid Block Kit.
    if (out.type === "actions" && Array.isArray(out.elements) && out.elements.length === 0)
      return undefined;
    return out;
  }
  return node;
};

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
  const slack = new Map<string, { text: string; blocks: unknown[] }>();
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
      slack.set(file.slice(0, -".json".length), { text: parsed.text, blocks: parsed.blocks });
    } catch {
      issues.push(`${path}: not valid JSON`);
    }
  }
  const email = new Map<string, EmailMessage>();
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
      email.set(category, { subject: subject.trim(), html, text });
    }
  }
  if (!slack.has("default")) issues.push(`${join(dir, "slack")}: default.json is required`);
  if (!email.has("default"))
    issues.push(
      `${join(dir, "email")}: default.subject.txt, default.html and default.txt are required`,
    );
  if (issues.length > 0) throw new ConfigError("templates", issues);

  return {
    slack(n) {
      const t =
        slack.get(n.category) ?? (slack.get("default") as { text: string; blocks: unknown[] });
      const values = valuesOf(n);
      return {
        text: cut(fill(t.text, values, escapeMrkdwn), SLACK_LIMITS.fallback),
        blocks: compact(renderSlack(t.blocks, values, {})) as unknown[],
      };
    },
    email(n) {
      const t = email.get(n.category) ?? (email.get("default") as EmailMessage);
      const values = valuesOf(n);
      // Subjects are one line: a key with line breaks must not inject headers or lines.
      const subject = cut(
        fill(t.subject, values, (s) => s.replace(/[\r\n]+/g, " ")),
        200,
      );
      return {
        subject,
        html: fill(t.html, values, escapeHtml),
        text: fill(t.text, values, (s) => s),
      };
    },
    categories: () =>
      [...new Set([...slack.keys(), ...email.keys()])].filter((c) => c !== "default").sort(),
  };
}
