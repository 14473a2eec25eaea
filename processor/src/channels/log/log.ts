/**
 * The `log` channel: one JSON line per notification on stdout, with the W3C trace id it was
 * delivered in (`trace_id`, when there is one) so a line leads to the upload's trace. Useful
 * locally and as a zero-dependency audit trail in a pod's logs.
 */
import type { Notification } from "../../../../core/contract.ts";
import { traceIdOf } from "../../../../core/tracing.ts";
import type { Channel } from "../channel.ts";

/**
 * Creates the log channel.
 * @param options.write line writer (default: stdout)
 */
export function createLogChannel(options: { write?: (line: string) => void } = {}): Channel {
  const write = options.write ?? ((line: string) => process.stdout.write(`${line}\n`));
  return {
    name: "log",
    async send(notification: Notification) {
      const traceId = traceIdOf();
      write(
        JSON.stringify({ channel: "log", notification, ...(traceId ? { trace_id: traceId } : {}) }),
      );
      return {};
    },
    async close() {},
  };
}
