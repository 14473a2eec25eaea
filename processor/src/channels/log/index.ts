/** The log channel as a plugin: no settings. */
import type { ChannelPlugin } from "../channel.ts";
import { createLogChannel } from "./log.ts";

/** The log plugin. */
export const logPlugin: ChannelPlugin<Record<string, never>> = {
  name: "log",
  env: {},
  check: () => [],
  settings: () => ({}),
  create: (_s, ctx) => createLogChannel(ctx.write ? { write: ctx.write } : {}),
};
