/**
 * Runs the infrastructure program offline against Pulumi mocks and prints every resource it
 * would create (type, name, inputs) as JSON: what the policy tests read, and a way to see a
 * stack's shape without AWS credentials.
 *
 *   bun infra/synth.ts dev|prod
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as pulumi from "@pulumi/pulumi";

const stack = process.argv[2] ?? "dev";
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
          { secretArn: `arn:aws:secretsmanager:${region}:${ACCOUNT}:secret:rds!db-fanda` },
        ];
        state.endpoint = "fanda.cluster.example:3306";
      }
      if (args.type === "aws:secretsmanager/secret:Secret") {
        state.arn = `arn:aws:secretsmanager:${region}:${ACCOUNT}:secret:${args.inputs.name ?? args.name}`;
      }
      return { id: `${args.name}-id`, state };
    },
    call(args) {
      if (args.token === "aws:index/getAvailabilityZones:getAvailabilityZones") {
        return { names: [`${region}a`, `${region}b`, `${region}c`], zoneIds: ["a", "b", "c"] };
      }
      if (args.token === "aws:secretsmanager/getRandomPassword:getRandomPassword") {
        return { randomPassword: "mock-password-not-a-secret" };
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
await Promise.all(Object.values(outputs).map((o) => resolve(o as pulumi.Output<unknown>)));
// Policies built from other resources' outputs register once those resolve.
const deadline = Date.now() + 10_000;
while (
  !resources.some((r) => r.type === "aws:iam/rolePolicy:RolePolicy" && r.name === "fanda-processor")
) {
  if (Date.now() > deadline) throw new Error("the processor policy was never registered");
  await Bun.sleep(20);
}
await Bun.sleep(100);
process.stdout.write(JSON.stringify(resources));
process.exit(0);
