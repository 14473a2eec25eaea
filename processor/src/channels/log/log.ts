/**
 * The `log` channel: one JSON line per notification on stdout. Useful locally and as a
 * zero-dependency audit trail in a pod's logs.
 */
import type { Notification } from "../../../../core/contract.ts";
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
      write(JSON.stringify({ channel: "log", notification }));
      return {};
    },
    async close() {},
  };
}
