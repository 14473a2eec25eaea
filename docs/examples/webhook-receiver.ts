// A Fanda webhook receiver: verifies the Standard Webhooks signature with the
// `standardwebhooks` library (npm i standardwebhooks) and acts once per webhook-id.
// Runs on Bun as is (`WEBHOOK_SECRET=whsec_... bun webhook-receiver.ts`); the handler
// takes a Fetch API Request, so it fits Node (Hono, Next.js route handlers), Deno or Workers.
import { Webhook, WebhookVerificationError } from "standardwebhooks";

/** The notification Fanda posts (docs/webhooks.md, "Payload"). */
export interface FandaNotification {
  schemaVersion: 1;
  eventId: string;
  fileName: string;
  bucketName: string;
  objectKey: string;
  uploadTime: string;
  s3Url: string;
  category: string;
  size?: number;
  eTag?: string;
  versionId?: string;
  sequencer: string;
  eventName: string;
}

/**
 * Where the receiver remembers webhook ids. In production use something shared by every
 * instance that outlives restarts, and keep ids for days: a table with a unique key on the
 * id, or Redis (`SET id busy NX EX 300`, then `SET id done EX 604800`).
 */
export interface SeenStore {
  /** Marks `id` busy if it is new; else tells whether it is being handled or was handled. */
  claim(id: string): Promise<"claimed" | "busy" | "done">;
  /** Records `id` as handled. */
  done(id: string): Promise<void>;
  /** Forgets `id` after a failure, so that Fanda's retry is handled. */
  release(id: string): Promise<void>;
}

/** A store in this process's memory (never forgets): for one instance and for trying out. */
export function memoryStore(): SeenStore {
  const seen = new Map<string, "busy" | "done">();
  return {
    async claim(id) {
      const state = seen.get(id);
      if (state) return state;
      seen.set(id, "busy");
      return "claimed";
    },
    async done(id) {
      seen.set(id, "done");
    },
    async release(id) {
      seen.delete(id);
    },
  };
}

/**
 * Makes the request handler.
 * @param secrets every secret currently valid: during a rotation both the old and the new one
 * @param handle what to do with a notification (once per webhook-id); throw to have it retried
 */
export function createReceiver(options: {
  secrets: string[];
  handle: (notification: FandaNotification) => Promise<void>;
  store?: SeenStore;
}): (request: Request) => Promise<Response> {
  const verifiers = options.secrets.map((secret) => new Webhook(secret));
  const store = options.store ?? memoryStore();

  return async (request) => {
    // Verify the raw body exactly as it arrived: re-serialised JSON would not match.
    const body = await request.text();
    const headers = Object.fromEntries(request.headers);
    let notification: FandaNotification | undefined;
    for (const verifier of verifiers) {
      try {
        notification = verifier.verify(body, headers) as FandaNotification;
        break;
      } catch (err) {
        if (!(err instanceof WebhookVerificationError)) throw err;
      }
    }
    // Fanda treats 401 as its own misconfiguration: it holds the webhooks, does not drop them.
    if (!notification) return new Response("invalid signature", { status: 401 });

    // webhook-id is the same on every retry and duplicate of one notification.
    const id = headers["webhook-id"] as string;
    const state = await store.claim(id);
    // Already handled: say so, or Fanda would retry it.
    if (state === "done") return new Response(null, { status: 204 });
    // A duplicate that arrives while the first copy is being handled: have Fanda ask again
    // later (if the first copy fails, this one is then handled; if not, it is a done one).
    if (state === "busy") {
      return new Response("in progress", { status: 503, headers: { "retry-after": "5" } });
    }
    try {
      await options.handle(notification);
    } catch (err) {
      await store.release(id);
      console.error(`webhook ${id} failed; Fanda will retry it`, err);
      return new Response("try again", { status: 503 });
    }
    await store.done(id);
    return new Response(null, { status: 204 });
  };
}

if (import.meta.main) {
  // Several secrets, separated by spaces, while a rotation is under way.
  const secrets = (process.env.WEBHOOK_SECRET ?? "").split(" ").filter(Boolean);
  const server = Bun.serve({
    port: Number(process.env.PORT ?? 3000),
    fetch: createReceiver({
      secrets,
      handle: async (n) => {
        console.log(`${n.category}: ${n.eventName} s3://${n.bucketName}/${n.objectKey}`);
      },
    }),
  });
  console.log(`listening on ${server.url}`);
}
