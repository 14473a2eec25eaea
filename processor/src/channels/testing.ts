/** Test helper shared by the channel tests. */
import { ChannelError } from "../errors.ts";

/** The ChannelError a promise rejects with; fails when it resolves or rejects otherwise. */
export async function channelErrorOf(p: Promise<unknown>): Promise<ChannelError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ChannelError) return err;
    throw err;
  }
  throw new Error("expected a ChannelError");
}
