/**
 * Email's rendering: subject, HTML and text per category from `email/<category>.subject.txt`,
 * `.html` and `.txt`, compiled once at load. Values are escaped for HTML in the HTML body,
 * kept on one line in the subject, and left as they are in the text body.
 */
import type { Notification } from "../../../../core/contract.ts";
import { ConfigError } from "../../../../core/errors.ts";
import {
  asIs,
  compileText,
  cut,
  DEFAULT_TEMPLATES_DIR,
  type Encode,
  escapeHtml,
  templateFolder,
  type Values,
  valuesOf,
} from "../channel.ts";

/** An email's parts. */
export interface EmailMessage {
  subject: string;
  html: string;
  text: string;
}

/** Email's loaded templates. */
export interface EmailTemplates {
  email(n: Notification): EmailMessage;
  /** Categories with their own email templates (the rest use `default`). */
  categories(): string[];
}

/**
 * Loads and checks every email template in `dir`/email.
 * @throws ConfigError listing missing defaults, unreadable files and unknown placeholders
 */
export function loadEmailTemplates(dir: string = DEFAULT_TEMPLATES_DIR): EmailTemplates {
  const issues: string[] = [];
  const files = templateFolder(dir, "email", issues);
  type EmailTemplate = { [K in keyof EmailMessage]: (v: Values, e: Encode) => string };
  const email = new Map<string, EmailTemplate>();
  const emailFiles = files.list();
  const emailCategories = new Set(
    emailFiles
      .filter((f) => f.endsWith(".subject.txt"))
      .map((f) => f.slice(0, -".subject.txt".length)),
  );
  for (const category of emailCategories) {
    const parts = ["subject.txt", "html", "txt"].map((ext) => {
      return files.read(`${category}.${ext}`);
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
  if (!email.has("default"))
    issues.push(`${files.folder}: default.subject.txt, default.html and default.txt are required`);
  if (issues.length > 0) throw new ConfigError("templates", issues);
  return {
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
    categories: () => [...email.keys()].filter((c) => c !== "default").sort(),
  };
}
