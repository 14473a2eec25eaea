/**
 * Ingest: the uploads bucket (versioned, encrypted, public access blocked) notifies the
 * producer Lambda (nodejs22.x, the `bun build` bundle, in the VPC, reserved concurrency) on
 * every ObjectCreated; a failed invocation (after Lambda's retries) lands in an SQS queue.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { producerPolicy, stableJson } from "../iam.ts";

/** Arguments of {@link Ingest}. */
export interface IngestArgs {
  vpcId: pulumi.Input<string>;
  subnetIds: pulumi.Input<string>[];
  /** The producer's security group (the one MSK admits on 9098). */
  securityGroupId: pulumi.Input<string>;
  mskClusterArn: pulumi.Input<string>;
  bootstrapBrokers: pulumi.Input<string>;
  topic: string;
  region: string;
  reservedConcurrency: number;
  /** Folder with lambda.mjs (scripts/build-lambda). */
  codePath: string;
  /** Where alarms notify (an SNS topic), if anywhere. */
  alarmTopicArn?: pulumi.Input<string>;
}

/** Bucket, Lambda and their wiring. */
export class Ingest extends pulumi.ComponentResource {
  readonly bucket: aws.s3.Bucket;
  readonly lambda: aws.lambda.Function;
  readonly role: aws.iam.Role;
  /** Invocation records of events that exhausted Lambda's retries (scripts/redrive.ts). */
  readonly failures: aws.sqs.Queue;

  constructor(name: string, args: IngestArgs, opts?: pulumi.ComponentResourceOptions) {
    super("fanda:infra:Ingest", name, {}, opts);
    const parent = { parent: this };
    this.bucket = new aws.s3.Bucket(`${name}-uploads`, { forceDestroy: false }, parent);
    new aws.s3.BucketVersioning(
      `${name}-uploads`,
      {
        bucket: this.bucket.id,
        versioningConfiguration: { status: "Enabled" },
      },
      parent,
    );
    new aws.s3.BucketServerSideEncryptionConfiguration(
      `${name}-uploads`,
      {
        bucket: this.bucket.id,
        rules: [
          {
            applyServerSideEncryptionByDefault: { sseAlgorithm: "aws:kms" },
            bucketKeyEnabled: true,
          },
        ],
      },
      parent,
    );
    new aws.s3.BucketPublicAccessBlock(
      `${name}-uploads`,
      {
        bucket: this.bucket.id,
        blockPublicAcls: true,
        blockPublicPolicy: true,
        ignorePublicAcls: true,
        restrictPublicBuckets: true,
      },
      parent,
    );

    this.role = new aws.iam.Role(
      `${name}-producer`,
      {
        assumeRolePolicy: stableJson({
          Version: "2012-10-17",
          Statement: [
            {
              Effect: "Allow",
              Principal: { Service: "lambda.amazonaws.com" },
              Action: "sts:AssumeRole",
            },
          ],
        }),
      },
      parent,
    );
    new aws.iam.RolePolicyAttachment(
      `${name}-producer-vpc`,
      {
        role: this.role.name,
        policyArn: "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole",
      },
      parent,
    );
    new aws.iam.RolePolicy(
      `${name}-producer-msk`,
      {
        role: this.role.id,
        policy: pulumi
          .output(args.mskClusterArn)
          .apply((arn) => stableJson(producerPolicy(arn, args.topic))),
      },
      parent,
    );
    this.failures = new aws.sqs.Queue(
      `${name}-producer-failures`,
      { messageRetentionSeconds: 1_209_600 },
      parent,
    );
    const failures = this.failures;
    new aws.iam.RolePolicy(
      `${name}-producer-failures`,
      {
        role: this.role.id,
        policy: failures.arn.apply((arn) =>
          stableJson({
            Version: "2012-10-17",
            Statement: [{ Effect: "Allow", Action: ["sqs:SendMessage"], Resource: [arn] }],
          }),
        ),
      },
      parent,
    );
    this.lambda = new aws.lambda.Function(
      `${name}-producer`,
      {
        runtime: "nodejs22.x",
        handler: "lambda.handler",
        code: new pulumi.asset.FileArchive(args.codePath),
        role: this.role.arn,
        memorySize: 512,
        timeout: 30,
        reservedConcurrentExecutions: args.reservedConcurrency,
        vpcConfig: { subnetIds: args.subnetIds, securityGroupIds: [args.securityGroupId] },
        environment: {
          variables: {
            KAFKA_BROKERS: args.bootstrapBrokers,
            KAFKA_AUTH: "iam",
            KAFKA_TOPIC: args.topic,
            LOG_LEVEL: "info",
          },
        },
      },
      parent,
    );
    new aws.lambda.FunctionEventInvokeConfig(
      `${name}-producer`,
      {
        functionName: this.lambda.name,
        maximumRetryAttempts: 2,
        destinationConfig: { onFailure: { destination: failures.arn } },
      },
      parent,
    );
    const permission = new aws.lambda.Permission(
      `${name}-s3-invoke`,
      {
        action: "lambda:InvokeFunction",
        function: this.lambda.name,
        principal: "s3.amazonaws.com",
        sourceArn: this.bucket.arn,
      },
      parent,
    );
    new aws.s3.BucketNotification(
      `${name}-uploads`,
      {
        bucket: this.bucket.id,
        lambdaFunctions: [{ lambdaFunctionArn: this.lambda.arn, events: ["s3:ObjectCreated:*"] }],
      },
      { parent: this, dependsOn: [permission] },
    );
    new aws.cloudwatch.MetricAlarm(
      `${name}-producer-errors`,
      {
        namespace: "AWS/Lambda",
        metricName: "Errors",
        dimensions: { FunctionName: this.lambda.name },
        statistic: "Sum",
        period: 300,
        evaluationPeriods: 1,
        threshold: 0,
        comparisonOperator: "GreaterThanThreshold",
        alarmDescription:
          "The producer Lambda failed; failed events are in the producer-failures queue",
        treatMissingData: "notBreaching",
        ...(args.alarmTopicArn ? { alarmActions: [args.alarmTopicArn] } : {}),
      },
      parent,
    );
    // Records waiting in the on-failure queue are uploads without a notification until someone
    // redrives them (docs/runbooks/lambda-redrive.md); they expire after 14 days.
    new aws.cloudwatch.MetricAlarm(
      `${name}-producer-failures-waiting`,
      {
        namespace: "AWS/SQS",
        metricName: "ApproximateNumberOfMessagesVisible",
        dimensions: { QueueName: failures.name },
        statistic: "Maximum",
        period: 300,
        evaluationPeriods: 1,
        threshold: 0,
        comparisonOperator: "GreaterThanThreshold",
        alarmDescription:
          "Uploads the producer Lambda gave up on are waiting: redrive them (docs/runbooks/lambda-redrive.md)",
        treatMissingData: "notBreaching",
        ...(args.alarmTopicArn ? { alarmActions: [args.alarmTopicArn] } : {}),
      },
      parent,
    );
    this.registerOutputs({ bucket: this.bucket.bucket, lambda: this.lambda.name });
  }
}
