/**
 * Runs the infrastructure program offline against Pulumi mocks and prints every resource it
 * would create (type, name, inputs) as JSON: what the policy tests read, and a way to see a
 * stack's shape without AWS credentials.
 *
 *   bun infra/synth.ts dev|prod             every resource, as a JSON array
 *   bun infra/synth.ts dev|prod --outputs   the stack outputs (secrets shown as "[secret]")
 *   bun infra/synth.ts dev|prod --all       both, as {"resources": [...], "outputs": {...}}
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as pulumi from "@pulumi/pulumi";

const stack = process.argv[2] ?? "dev";
const printOutputs = process.argv.includes("--outputs");
const printAll = process.argv.includes("--all");
const file = Bun.YAML.parse(
  readFileSync(join(import.meta.dir, `Pulumi.${stack}.yaml`), "utf8"),
) as {
  config: Record<string, unknown>;
};
const raw: Record<string, unknown> = {};
for (const [k, v] of Object.entries(file.config)) {
  if (k === "aws:region") raw.region = v;
  else if (k.startsWith("fanda:")) raw[k.slice("fanda:".length)] = v;
}

const ACCOUNT = "123456789012";
const region = String(raw.region);
const resources: { type: string; name: string; inputs: Record<string, unknown> }[] = [];

await pulumi.runtime.setMocks(
  {
    newResource(args) {
      resources.push({ type: args.type, name: args.name, inputs: args.inputs });
      const service = args.type.split(":")[1]?.split("/")[0] ?? "x";
      const state: Record<string, unknown> = {
        ...args.inputs,
        arn: `arn:aws:${service}:${region}:${ACCOUNT}:${args.name}`,
        name: args.inputs.name ?? args.name,
      };
      if (args.type === "aws:msk/cluster:Cluster") {
        state.arn = `arn:aws:kafka:${region}:${ACCOUNT}:cluster/${args.name}/0a1b2c3d-1111-2222-3333-444455556666-5`;
        state.bootstrapBrokersSaslIam = "b-1.fanda.kafka.example:9098,b-2.fanda.kafka.example:9098";
      }
      if (args.type === "eks:index:Cluster") {
        state.nodeSecurityGroupId = "sg-0eksnodes";
        state.oidcProviderArn = `arn:aws:iam::${ACCOUNT}:oidc-provider/oidc.eks.${region}.amazonaws.com/id/EXAMPLE`;
        state.oidcProviderUrl = `https://oidc.eks.${region}.amazonaws.com/id/EXAMPLE`;
        state.kubeconfigJson = "{}";
      }
      if (args.type === "aws:rds/instance:Instance") {
        state.masterUserSecrets = [
          {
            secretArn: `arn:aws:secretsmanager:${region}:${ACCOUNT}:secret:rds!db-0a1b2c3d-4e5f-6789-abcd-ef0123456789-AbCdEf`,
          },
        ];
        state.address = `${args.name}.abcdefghijkl.${region}.rds.amazonaws.com`;
        state.port = 3306;
        state.endpoint = `${state.address}:3306`;
      }
      if (args.type === "aws:elasticache/replicationGroup:ReplicationGroup") {
        state.primaryEndpointAddress = `master.${args.name}.abcdef.apn2.cache.amazonaws.com`;
      }
      if (args.type === "aws:secretsmanager/secret:Secret") {
        // Secrets Manager appends six random characters to a secret's ARN.
        state.arn = `arn:aws:secretsmanager:${region}:${ACCOUNT}:secret:${args.inputs.name ?? args.name}-AbCdEf`;
      }
      if (args.type === "aws:iam/role:Role") {
        state.arn = `arn:aws:iam::${ACCOUNT}:role/${args.inputs.name ?? args.name}`;
        state.name = args.inputs.name ?? args.name;
      }
      if (args.type === "aws:ecr/repository:Repository") {
        state.arn = `arn:aws:ecr:${region}:${ACCOUNT}:repository/${args.inputs.name}`;
        state.repositoryUrl = `${ACCOUNT}.dkr.ecr.${region}.amazonaws.com/${args.inputs.name}`;
      }
      if (args.type === "aws:sqs/queue:Queue") {
        state.arn = `arn:aws:sqs:${region}:${ACCOUNT}:${args.name}`;
        state.url = `https://sqs.${region}.amazonaws.com/${ACCOUNT}/${args.name}`;
      }
      if (args.type === "aws:s3/bucket:Bucket") state.bucket = `${args.name}-0123abcd`;
      return { id: `${args.name}-id`, state };
    },
    call(args) {
      if (args.token === "aws:index/getAvailabilityZones:getAvailabilityZones") {
        return { names: [`${region}a`, `${region}b`, `${region}c`], zoneIds: ["a", "b", "c"] };
      }
      if (args.token === "aws:secretsmanager/getRandomPassword:getRandomPassword") {
        return { randomPassword: "mock-password-not-a-secret" };
      }
      if (args.token === "aws:index/getCallerIdentity:getCallerIdentity") {
        return { accountId: ACCOUNT, arn: `arn:aws:iam::${ACCOUNT}:user/synth`, userId: "synth" };
      }
      if (args.token === "aws:iam/getOpenIdConnectProvider:getOpenIdConnectProvider") {
        const host = String(args.inputs.url).replace(/^https:\/\//, "");
        return { ...args.inputs, arn: `arn:aws:iam::${ACCOUNT}:oidc-provider/${host}` };
      }
      return args.inputs;
    },
  },
  "fanda-infra",
  stack,
  false,
);

const { fanda } = await import("./index.ts");
const { outputs } = fanda(raw, join(import.meta.dir, "..", "producer", "src"));
const resolve = <T>(o: pulumi.Output<T>) => new Promise<T>((r) => o.apply((v) => r(v)));
const resolved: Record<string, unknown> = {};
for (const [k, o] of Object.entries(outputs)) {
  const value = await resolve(o as pulumi.Output<unknown>);
  resolved[k] = pulumi.Output.isInstance(o) && k === "kubeconfig" ? "[secret]" : value;
}
// Resources whose inputs depend on other resources' outputs register once those resolve: wait
// until the count has been stable for a while.
const deadline = Date.now() + 10_000;
let seen = -1;
let stableSince = Date.now();
while (Date.now() - stableSince < 300) {
  if (Date.now() > deadline) throw new Error("resource registration did not settle in 10 s");
  if (resources.length !== seen) {
    seen = resources.length;
    stableSince = Date.now();
  }
  await Bun.sleep(20);
}
// Exit only once stdout has taken everything: exiting right after write() cuts a large output
// short when stdout is a pipe.
const text = JSON.stringify(
  printAll ? { resources, outputs: resolved } : printOutputs ? resolved : resources,
);
await new Promise<void>((done, fail) =>
  process.stdout.write(text, (err) => (err ? fail(err) : done())),
);
process.exit(0);
