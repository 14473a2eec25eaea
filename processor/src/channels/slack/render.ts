/**
 * Slack's rendering: Block Kit per category from `slack/<category>.json` (blocks plus a plain
 * `text` fallback), compiled once at load, and the digest that carries several notifications
 * in one message. Values are escaped for mrkdwn where they land in mrkdwn and cut to Slack's
 * limits.
 */
import type { Notification } from "../../../../core/contract.ts";
import { ConfigError } from "../../../../core/errors.ts";
import {
  asIs,
  compileText,
  cut,
  DEFAULT_TEMPLATES_DIR,
  type Encode,
  templateFolder,
  type Values,
  valuesOf,
} from "../channel.ts";

/** A Slack message: fallback text and Block Kit blocks. */
export interface SlackMessage {
  text: string;
  blocks: unknown[];
}

/** Slack's loaded templates. */
export interface SlackTemplates {
  slack(n: Notification): SlackMessage;
  /**
   * One Slack message for several notifications (digest mode): a count by category and, for
   * the first {@link DIGEST_LINES}, each category's own fallback line.
   */
  slackDigest(ns: readonly Notification[]): SlackMessage;
  /** Categories with their own Slack template (the rest use `default`). */
  categories(): string[];
}

/** How many notifications a Slack digest lists one by one; the rest are counted. */
export const DIGEST_LINES = 10;

/** Slack's mrkdwn control characters, per its "escaping text" guide. */
const escapeMrkdwn = (s: string) =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

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
 * Loads and checks every Slack template in `dir`/slack.
 * @throws ConfigError listing a missing default, unreadable or invalid files and unknown
 *   placeholders
 */
export function loadSlackTemplates(dir: string = DEFAULT_TEMPLATES_DIR): SlackTemplates {
  const issues: string[] = [];
  const files = templateFolder(dir, "slack", issues);
  type SlackTemplate = { text: (v: Values, e: Encode) => string; blocks: (v: Values) => unknown };
  const slack = new Map<string, SlackTemplate>();
  for (const file of files.list().filter((f) => f.endsWith(".json"))) {
    const raw = files.read(file);
    if (raw === undefined) continue;
    const path = `${files.folder}/${file}`;
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
  if (!slack.has("default")) issues.push(`${files.folder}: default.json is required`);
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
    categories: () => [...slack.keys()].filter((c) => c !== "default").sort(),
  };
}
