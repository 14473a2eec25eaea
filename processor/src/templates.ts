/**
 * The template engine the channels share: message templates per category live in files
 * (`processor/templates` by default, `TEMPLATES_DIR` to override), one folder per channel that
 * renders them (`slack/`, `email/`; each channel's own loader reads its folder: see
 * channels/slack/render.ts and channels/email/render.ts). `default.*` serves categories without
 * their own files.
 *
 * Placeholders are `{{name}}` with the names in {@link PLACEHOLDERS}; nothing else is
 * evaluated. Each channel escapes values for where they land and cuts them to its provider's
 * limits, because a file name can contain anything, at any length.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Notification } from "../../core/contract.ts";

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

/** Default template folder, next to the processor's sources. */
export const DEFAULT_TEMPLATES_DIR = fileURLToPath(new URL("../templates", import.meta.url));

const PLACEHOLDER = /\{\{\s*([A-Za-z][A-Za-z0-9]*)\s*\}\}/g;

/** Cuts text to `max` characters (by code point), marking the cut. */
export function cut(s: string, max: number): string {
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

/** Placeholder values by name. */
export type Values = Record<string, string>;
/** How a value is escaped for where it lands. */
export type Encode = (s: string) => string;

/**
 * Compiles a text with {{placeholders}} once, at load: rendering a message then joins literal
 * parts and encoded values instead of running the placeholder pattern over every string.
 */
export function compileText(template: string): (values: Values, encode: Encode) => string {
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
      // Own properties only: {{constructor}} must not reach Object's inherited one.
      const name = names[i] as string;
      const value = Object.hasOwn(values, name) ? values[name] : undefined;
      out += encode(typeof value === "string" ? value : "") + literals[i + 1];
    }
    return out;
  };
}

/** No escaping (plain text). */
export const asIs: Encode = (s) => s;

/** Adds an issue for every placeholder in `text` that is not one of {@link PLACEHOLDERS}. */
export function checkPlaceholders(text: string, where: string, issues: string[]) {
  for (const m of text.matchAll(PLACEHOLDER)) {
    if (!(PLACEHOLDERS as readonly string[]).includes(m[1] ?? "")) {
      issues.push(`${where}: unknown placeholder {{${m[1]}}} (known: ${PLACEHOLDERS.join(", ")})`);
    }
  }
}

/**
 * Reads a channel's template folder `<dir>/<sub>`, collecting problems in `issues` instead of
 * throwing, so a loader reports every bad file at once.
 */
export function templateFolder(dir: string, sub: string, issues: string[]) {
  const folder = join(dir, sub);
  return {
    folder,
    /** The folder's file names (none, and an issue, when it is missing). */
    list(): string[] {
      try {
        return readdirSync(folder);
      } catch {
        issues.push(`${folder}: missing template folder`);
        return [];
      }
    },
    /** A file's text, its placeholders checked (undefined, and an issue, when unreadable). */
    read(file: string): string | undefined {
      const path = join(folder, file);
      try {
        const text = readFileSync(path, "utf8");
        checkPlaceholders(text, path, issues);
        return text;
      } catch (err) {
        issues.push(`${path}: cannot read (${(err as NodeJS.ErrnoException).code ?? "error"})`);
        return undefined;
      }
    },
  };
}
