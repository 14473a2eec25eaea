/**
 * One stack synthesized offline against Pulumi mocks (infra/synth.ts, in a process of its own,
 * since Pulumi's mocks are process-wide): every resource it would create and its outputs. What
 * the infra, agreement and Kafka-access tests read.
 */
import { join } from "node:path";
import { runCommand } from "../scripts/run.ts";

/** A resource the stack would create. */
export interface SynthResource {
  type: string;
  name: string;
  // biome-ignore lint/suspicious/noExplicitAny: resource inputs of many shapes.
  inputs: Record<string, any>;
}

/** A synthesized stack. */
export interface Synthesized {
  resources: SynthResource[];
  /** The stack outputs (`environment` among them); secrets as "[secret]". */
  outputs: Record<string, unknown> & { environment: Record<string, string> };
}

/** Synthesizes `stack` (dev, prod). */
export async function synthesize(stack: string): Promise<Synthesized> {
  const r = await runCommand(["bun", join(import.meta.dir, "synth.ts"), stack, "--all"]);
  if (r.code !== 0) throw new Error(`bun infra/synth.ts ${stack} failed:\n${r.stderr}`);
  return JSON.parse(r.stdout) as Synthesized;
}
