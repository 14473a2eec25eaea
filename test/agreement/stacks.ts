/**
 * The layers of one environment, as the agreement tests read them: the Pulumi stack synthesized
 * offline (infra/synth.ts: every resource and the stack outputs), and every kustomization of
 * the environment rendered with the stack.env that stack would write. Rendering uses a copy of
 * kustomize/ with that stack.env in place, so the checks hold for what `pulumi up` + env-sync
 * would produce, whatever the committed stack.env holds after a real `up`.
 */
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type SynthResource, synthesize } from "../../infra/synthesize.ts";
import { type Environment, parseStackEnv, renderStackEnv } from "../../scripts/env-sync.ts";
import { type K8sObject, renderDir } from "../../scripts/validate-manifests.ts";

const ROOT = join(import.meta.dir, "..", "..");

/** A resource the stack would create. */
export type Resource = SynthResource;

/** One environment across its layers. */
export interface Layers {
  env: Environment;
  resources: Resource[];
  /** The stack's `environment` output (what stack.env holds). */
  stack: Record<string, string>;
  /** kustomize/overlays/<env>: the processor's namespace. */
  overlay: K8sObject[];
  /** kustomize/platform/<env>: cluster-scoped objects. */
  platform: K8sObject[];
  /** kustomize/argocd/<env>: what the cluster's Argo CD runs. */
  argocd: K8sObject[];
}

/** Synthesizes the stack of `env` and renders its kustomizations against it. */
export async function loadLayers(env: Environment): Promise<Layers> {
  const { resources, outputs } = await synthesize(env);
  const stackEnv = renderStackEnv(env, outputs.environment);
  const dir = mkdtempSync(join(tmpdir(), `fanda-layers-${env}-`));
  try {
    cpSync(join(ROOT, "kustomize"), join(dir, "kustomize"), { recursive: true });
    writeFileSync(join(dir, "kustomize", "overlays", env, "stack", "stack.env"), stackEnv);
    const render = async (target: string) => {
      const r = await renderDir(join(dir, "kustomize", target), target);
      if (r.problems.length > 0) throw new Error(r.problems.join("\n"));
      return r.objects;
    };
    const [overlay, platform, argocd] = await Promise.all([
      render(`overlays/${env}`),
      render(`platform/${env}`),
      render(`argocd/${env}`),
    ]);
    return {
      env,
      resources,
      stack: parseStackEnv(stackEnv),
      overlay,
      platform,
      argocd,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
