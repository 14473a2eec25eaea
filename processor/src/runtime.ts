/**
 * The few places where the processor depends on its runtime. Fanda runs on Bun; the same
 * code, bundled with `bun build --target=node`, also runs on Node (the Bun-vs-Node benchmark
 * does that), so Bun-only APIs are reached only through here.
 */
import { fileURLToPath } from "node:url";

/** A listening HTTP server. */
export interface HttpServer {
  /** The bound port (the real one when 0 was asked for). */
  readonly port: number;
  /** Stops accepting and closes open connections. */
  stop(): Promise<void>;
}

/** Options of {@link serveHttp}. */
export interface ServeOptions {
  hostname: string;
  port: number;
  fetch: (request: Request) => Response | Promise<Response>;
}

/** The runtime the process runs on. */
export const runtime: "bun" | "node" = typeof globalThis.Bun === "undefined" ? "node" : "bun";

/**
 * Serves a fetch handler (a Hono app's `fetch`): `Bun.serve` on Bun, `@hono/node-server` on
 * Node. Resolves once the port is bound; rejects when it cannot be (port in use).
 */
export async function serveHttp(options: ServeOptions): Promise<HttpServer> {
  if (runtime === "bun") {
    const server = Bun.serve({
      hostname: options.hostname,
      port: options.port,
      fetch: options.fetch,
    });
    return { port: server.port ?? options.port, stop: () => server.stop() };
  }
  const { createAdaptorServer } = await import("@hono/node-server");
  const server = createAdaptorServer({ fetch: options.fetch, hostname: options.hostname });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.hostname, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : options.port;
  return {
    port,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        if ("closeIdleConnections" in server) server.closeIdleConnections();
      }),
  };
}

/**
 * True when the module whose `import.meta` is given is the process's entry point
 * (`import.meta.main` on Bun; the script path compared on Node, which lacks it before 24).
 */
export function isEntryPoint(meta: ImportMeta): boolean {
  if (typeof meta.main === "boolean") return meta.main;
  const script = process.argv[1];
  return script !== undefined && fileURLToPath(meta.url) === script;
}
