/** ECR for the processor image, the SES sending identity (DKIM), the Slack token secret. */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { stableJson } from "../iam.ts";

/** Arguments of {@link Shared}. */
export interface SharedArgs {
  sesDomain: string;
  /** Prefix of account-wide names (`fanda/<env>`), so stacks can share an account. */
  prefix: string;
}

/** The property of the Slack secret that holds the bot token. */
export const SLACK_TOKEN_PROPERTY = "botToken";

/** Registry, mail identity and secrets. */
export class Shared extends pulumi.ComponentResource {
  readonly repository: aws.ecr.Repository;
  readonly sesIdentity: aws.sesv2.EmailIdentity;
  readonly slackSecret: aws.secretsmanager.Secret;

  constructor(name: string, args: SharedArgs, opts?: pulumi.ComponentResourceOptions) {
    super("fanda:infra:Shared", name, {}, opts);
    const parent = { parent: this };
    this.repository = new aws.ecr.Repository(
      `${name}-processor`,
      {
        name: `${args.prefix}/processor`,
        imageTagMutability: "IMMUTABLE",
        imageScanningConfiguration: { scanOnPush: true },
        encryptionConfigurations: [{ encryptionType: "KMS" }],
      },
      parent,
    );
    new aws.ecr.LifecyclePolicy(
      `${name}-processor`,
      {
        repository: this.repository.name,
        policy: stableJson({
          rules: [
            {
              rulePriority: 1,
              description: "Keep the last 50 images",
              selection: { tagStatus: "any", countType: "imageCountMoreThan", countNumber: 50 },
              action: { type: "expire" },
            },
          ],
        }),
      },
      parent,
    );
    this.sesIdentity = new aws.sesv2.EmailIdentity(
      `${name}-ses`,
      {
        emailIdentity: args.sesDomain,
        dkimSigningAttributes: { nextSigningKeyLength: "RSA_2048_BIT" },
      },
      parent,
    );
    this.slackSecret = new aws.secretsmanager.Secret(
      `${name}-slack`,
      {
        name: `${args.prefix}/slack`,
        description: `Slack bot token (${SLACK_TOKEN_PROPERTY}) for the Fanda processor; set the value out of band`,
      },
      parent,
    );
    // The property exists from the first `up`, so External Secrets finds it; the token itself is
    // put in by hand (docs/deployment.md) and never overwritten by a later `up`.
    new aws.secretsmanager.SecretVersion(
      `${name}-slack`,
      {
        secretId: this.slackSecret.id,
        secretString: JSON.stringify({ [SLACK_TOKEN_PROPERTY]: "" }),
      },
      { parent: this, ignoreChanges: ["secretString"] },
    );
    this.registerOutputs({ repositoryUrl: this.repository.repositoryUrl });
  }
}
