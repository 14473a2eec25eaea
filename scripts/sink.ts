/**
 * A webhook sink: receives the processor's webhook POSTs, keeps them, and prints each one.
 * Used by `scripts/dev` (so you can see notifications arrive) and by the integration tests.
 *
 *   [WEBHOOK_SECRET=whsec_...] bun scripts/sink.ts [--port 8082]
 *
 * Given the secret(s) (WEBHOOK_SECRET, as the processor takes it; or `secret` in code), it is a
 * Standard Webhooks receiver: each delivery is verified with the `standardwebhooks` library and
 * one that does not verify is answered 401 and not kept (as a real receiver would).
 *
 * `GET /received` lists what arrived. `POST /fail?status=500&count=3` makes the next 3
 * requests fail with that status (for retry and dead-letter tests).
 */
import { parseArgs } from "node:util";
import { Webhook } from "standardwebhooks";
import { waitFor } from "../test/support/wait.ts";

/** The trace id of a W3C `traceparent` header value (version 00), for display. */
const traceIdOfHeader = (value: string | undefined) =>
  /^00-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/.exec(value ?? "")?.[1];

/** One request the sink received. */
export interface Received {
  at: string;
  headers: Record<string, string>;
  body: unknown;
  /** The signature verified (only when the sink was given secrets). */
  verified?: true;
}

/** A running sink. */
export interface Sink {
  url: string;
  received: Received[];
  /** Answers the next `count` deliveries with `status` instead of 204 (Infinity: until told). */
  failNext(status: number, count: number): void;
  /** Makes every delivery take `ms` before it is accepted. */
  setDelay(ms: number): void;
  /** Holds deliveries until the returned function is called; `held()` counts the waiting. */
  hold(): () => void;
  held(): number;
  /** Deliveries refused because their signature did not verify, with the library's reason. */
  rejected: { at: string; reason: string }[];
  /** Resolves with the first received body matching `match`, or fails after `timeoutMs`. */
  waitFor(match: (body: unknown) => boolean, timeoutMs?: number): Promise<Received>;
  stop(): Promise<void>;
}

/**
 * Starts a sink on 127.0.0.1.
 * @param options.port 0 (default) picks a free port
 * @param options.print write each notification to stdout
 * @param options.secret verify signatures with these `whsec_` secrets (space or comma
 *   separated; one matching is enough, as for a receiver in the middle of a rotation)
 */
export function startSink(options: { port?: number; print?: boolean; secret?: string } = {}): Sink {
  const verifiers = (options.secret ?? "")
    .split(/[\s,]+/)
    .filter((s) => s.length > 0)
    .map((s) => new Webhook(s));
  const received: Received[] = [];
  const rejected: { at: string; reason: string }[] = [];
  let failures: { status: number; count: number } = { status: 500, count: 0 };
  let delayMs = 0;
  let gate: Promise<void> | undefined;
  let waiting = 0;
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: options.port ?? 0,
    async fetch(req) {
      const url = new URL(req.url);
      if (req.method === "GET" && url.pathname === "/received") return Response.json(received);
      if (req.method === "POST" && url.pathname === "/fail") {
        failures = {
          status: Number(url.searchParams.get("status") ?? 500),
          count: Number(url.searchParams.get("count") ?? 1),
        };
        return new Response(null, { status: 204 });
      }
      if (req.method !== "POST") return new Response("not found", { status: 404 });
      if (failures.count > 0) {
        failures.count--;
        return new Response("sink told to fail", { status: failures.status });
      }
      const text = await req.text();
      const headers = Object.fromEntries(req.headers);
      let verified: true | undefined;
      if (verifiers.length > 0) {
        let reason = "no secret";
        for (const verifier of verifiers) {
          try {
            verifier.verify(text, headers, { jsonParse: false });
            verified = true;
            break;
          } catch (err) {
            reason = (err as Error).message;
          }
        }
        if (!verified) {
          rejected.push({ at: new Date().toISOString(), reason });
          if (options.print) console.log(`refused a delivery: ${reason}`);
          return new Response(`signature: ${reason}`, { status: 401 });
        }
      }
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        return new Response("body is not JSON", { status: 400 });
      }
      if (gate) {
        waiting++;
        await gate;
        waiting--;
      }
      if (delayMs > 0) await Bun.sleep(delayMs);
      const entry: Received = {
        at: new Date().toISOString(),
        headers,
        body,
        ...(verified ? { verified } : {}),
      };
      received.push(entry);
      if (options.print) {
        const how = verified ? "signature verified" : "unsigned";
        const trace = traceIdOfHeader(headers.traceparent);
        console.log(
          `notification received (webhook-id ${headers["webhook-id"]}, ${trace ? `trace_id ${trace} from traceparent, ` : ""}${how}): ${JSON.stringify(body, null, 2)}`,
        );
      }
      return new Response(null, { status: 204 });
    },
  });
  return {
    url: `http://127.0.0.1:${server.port}/notify`,
    received,
    rejected,
    failNext(status, count) {
      failures = { status, count };
    },
    setDelay(ms) {
      delayMs = ms;
    },
    hold() {
      const { promise, resolve } = Promise.withResolvers<void>();
      gate = promise;
      return () => {
        gate = undefined;
        resolve();
      };
    },
    held: () => waiting,
    waitFor: (match, timeoutMs = 30_000) =>
      waitFor("a matching webhook delivery", () => received.find((r) => match(r.body)), {
        timeoutMs,
      }),
    stop: () => server.stop(true),
  };
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { port: { type: "string", default: "8082" } } });
  const secret = process.env.WEBHOOK_SECRET?.trim();
  const sink = startSink({ port: Number(values.port), print: true, ...(secret ? { secret } : {}) });
  console.log(
    `[sink] listening on ${sink.url}${secret ? ", verifying signatures (WEBHOOK_SECRET)" : ""}`,
  );
}
