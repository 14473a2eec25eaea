/**
 * The producer's spans: one `ingest` span per request or invocation that continues an incoming
 * trace, or one new trace per S3 record when there is none, so that each upload can be followed
 * on its own. The publisher's `publish` spans are their children.
 */
import {
  type Context,
  endWithError,
  hasTrace,
  ROOT_CONTEXT_FOR_NEW_TRACE,
  type Span,
  SpanKind,
  startSpan,
} from "../../core/tracing.ts";

/** Started ingest spans. */
export interface Ingest {
  /** Each notification's context, for the publisher (same order). */
  contexts: Context[];
  /** The one context of the request when it continues an incoming trace (for its log lines). */
  shared?: Context;
  /** Ends every span, with an error status when `err` is given. */
  end(err?: unknown): void;
}

/**
 * Starts the ingest span(s) for `count` notifications.
 * @param incoming the caller's trace (a `traceparent` header, Lambda's X-Ray header), if any
 */
export function startIngest(
  count: number,
  incoming: Context | undefined,
  attributes: Record<string, string | number> = {},
): Ingest {
  const options = { kind: SpanKind.SERVER, attributes };
  const spans: Span[] = [];
  let contexts: Context[];
  let shared: Context | undefined;
  if (hasTrace(incoming)) {
    const { span, ctx } = startSpan("ingest", options, incoming);
    spans.push(span);
    shared = ctx;
    contexts = Array.from({ length: count }, () => ctx);
  } else {
    contexts = Array.from({ length: count }, () => {
      const { span, ctx } = startSpan(
        "ingest",
        { ...options, root: true },
        ROOT_CONTEXT_FOR_NEW_TRACE,
      );
      spans.push(span);
      return ctx;
    });
  }
  return {
    contexts,
    ...(shared ? { shared } : {}),
    end(err) {
      for (const span of spans) {
        if (err === undefined) span.end();
        else endWithError(span, err);
      }
    },
  };
}
