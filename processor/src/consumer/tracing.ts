/**
 * The consumer's spans. A batch gets a `receive <topic>` span; each of its messages a
 * `process <topic>` span, child of the publish span its `traceparent` header names (or the root
 * of a new trace when it has none, or a malformed one) and linked to the batch's. Everything
 * done for a message (decode, sends, dead-lettering, its log lines) runs in its context; the
 * delivery-log write, shared by many messages, is a span of its own linked to theirs.
 */
import type { Notification } from "../../../core/contract.ts";
import {
  type Context,
  endWithError,
  extractTraceContext,
  isExporting,
  type Link,
  ROOT_CONTEXT_FOR_NEW_TRACE,
  type Span,
  SpanKind,
  spanContextOf,
  startSpan,
  tracer,
} from "../../../core/tracing.ts";
import type { DeliveryRecord } from "../delivery-log/index.ts";
import type { Item } from "./handler.ts";

/** Most links a span gets (the SDK's default limit is 128). */
const MAX_LINKS = 128;

/** The process span of each decoded notification, for the delivery-log write's links. */
const spanOfNotification = new WeakMap<Notification, Span>();

/** A batch's spans. */
export interface BatchTrace {
  /** The context a message's work runs in. */
  contextOf(item: Item): Context;
  /** Notes a decoded message (its notification leads to its span from the delivery records). */
  decoded(item: Item): void;
  /** Ends every span, with each message's outcome. */
  end(reason?: string): void;
}

/** Starts the spans of one batch. */
export function traceBatch(
  topic: string,
  partition: number,
  groupId: string,
  items: readonly Item[],
): BatchTrace {
  const common = {
    "messaging.system": "kafka",
    "messaging.destination.name": topic,
    "messaging.destination.partition.id": String(partition),
    "messaging.consumer.group.name": groupId,
  };
  const parents = items.map((i) => extractTraceContext(i.message.headers));
  const exporting = isExporting();
  let batch: Span | undefined;
  if (exporting) {
    const links: Link[] = [];
    for (const p of parents) {
      const sc = spanContextOf(p);
      if (sc && links.length < MAX_LINKS) links.push({ context: sc });
    }
    batch = tracer().startSpan(
      `receive ${topic}`,
      {
        kind: SpanKind.CONSUMER,
        root: true,
        links,
        attributes: {
          ...common,
          "messaging.operation.type": "receive",
          "messaging.batch.message_count": items.length,
        },
      },
      ROOT_CONTEXT_FOR_NEW_TRACE,
    );
  }
  const batchLink = batch ? [{ context: batch.spanContext() }] : [];
  const started = new Map<Item, { span: Span; ctx: Context }>();
  if (!exporting) {
    // Nothing records: each message's context is the one it carries (or a new trace's).
    const contexts = new Map<Item, Context>();
    items.forEach((item, i) => {
      contexts.set(item, startSpan("", {}, parents[i]).ctx);
    });
    return {
      contextOf: (item) => contexts.get(item) ?? ROOT_CONTEXT_FOR_NEW_TRACE,
      decoded: () => {},
      end: () => {},
    };
  }
  items.forEach((item, i) => {
    started.set(
      item,
      startSpan(
        `process ${topic}`,
        {
          kind: SpanKind.CONSUMER,
          links: batchLink,
          ...(exporting
            ? {
                attributes: {
                  ...common,
                  "messaging.operation.type": "process",
                  "messaging.kafka.offset": Number(item.message.offset),
                },
              }
            : {}),
        },
        parents[i],
      ),
    );
  });
  return {
    contextOf: (item) => started.get(item)?.ctx ?? ROOT_CONTEXT_FOR_NEW_TRACE,
    decoded(item) {
      const t = started.get(item);
      const n = item.notification;
      if (!t || !n || !exporting) return;
      t.span.setAttributes({
        "messaging.message.id": n.eventId,
        "fanda.event_id": n.eventId,
        "fanda.category": n.category,
      });
      spanOfNotification.set(n, t.span);
    },
    end(reason) {
      for (const [item, { span }] of started) {
        if (item.final) span.setAttribute("fanda.outcome", "final");
        else span.setAttribute("fanda.outcome", item.reason ?? reason ?? "not-final");
        span.end();
      }
      batch?.end();
    },
  };
}

/**
 * Runs the delivery-log write of `records` in a span linked to their messages' process spans
 * (only while spans are exported: without an SDK it is the bare write).
 */
export async function traceLogWrite<T>(
  records: readonly DeliveryRecord[],
  kind: string,
  write: () => Promise<T>,
): Promise<T> {
  if (!isExporting()) return write();
  const links: Link[] = [];
  const seen = new Set<string>();
  for (const r of records) {
    const sc = spanOfNotification.get(r.notification)?.spanContext();
    if (!sc || seen.has(sc.spanId) || links.length >= MAX_LINKS) continue;
    seen.add(sc.spanId);
    links.push({ context: sc });
  }
  const { span } = startSpan(
    "delivery-log write",
    {
      kind: SpanKind.CLIENT,
      root: true,
      links,
      attributes: { "fanda.records": records.length, "fanda.delivery_log": kind },
    },
    ROOT_CONTEXT_FOR_NEW_TRACE,
  );
  try {
    const result = await write();
    span.end();
    return result;
  } catch (err) {
    endWithError(span, err);
    throw err;
  }
}
