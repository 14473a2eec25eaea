/** ECR for the processor image, the SES sending identity (DKIM), the Slack token secret. */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { stableJson } from "../iam.ts";

/** Arguments of {@link Shared}. */
export interface SharedArgs {
  sesDomain: string;
}

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
        name: "fanda-processor",
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
        name: "fanda/slack",
        description:
          "Slack bot token (botToken) for the Fanda processor; set the value out of band",
      },
      parent,
    );
    this.registerOutputs({ repositoryUrl: this.repository.repositoryUrl });
  }
}
