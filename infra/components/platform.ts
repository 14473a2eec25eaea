/**
 * EKS (pulumi/eks v4) with access entries (API authentication), a managed node group for
 * system pods, the OIDC provider for IRSA, the processor's least-privilege role, and what
 * Karpenter needs (controller role, node role, interruption queue). Karpenter, KEDA, ArgoCD,
 * External Secrets and kube-prometheus-stack are installed by the bootstrap in
 * docs/deployment.md (Helm), not by this program.
 */
import * as aws from "@pulumi/aws";
import * as eks from "@pulumi/eks";
import * as pulumi from "@pulumi/pulumi";
import { stableJson } from "../iam.ts";

/** Arguments of {@link Platform}. */
export interface PlatformArgs {
  vpcId: pulumi.Input<string>;
  privateSubnetIds: pulumi.Input<string>[];
  publicSubnetIds: pulumi.Input<string>[];
  version: string;
  systemNodeType: string;
  /** EKS cluster name: also the Karpenter discovery tag and part of the node role's name. */
  clusterName: string;
  /** An IAM role or user that administers the cluster (kubectl, Helm, Argo CD bootstrap). */
  adminPrincipalArn: string;
}

/** EKS's managed policy for full cluster administration through an access entry. */
export const EKS_ADMIN_POLICY =
  "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy";

/** An IRSA trust policy for one ServiceAccount. */
export function irsaTrust(
  oidcArn: string,
  oidcUrl: string,
  namespace: string,
  serviceAccount: string,
) {
  const issuer = oidcUrl.replace(/^https:\/\//, "");
  return {
    Version: "2012-10-17",
    Statement: [
      {
        Effect: "Allow",
        Principal: { Federated: oidcArn },
        Action: "sts:AssumeRoleWithWebIdentity",
        Condition: {
          StringEquals: {
            [`${issuer}:sub`]: `system:serviceaccount:${namespace}:${serviceAccount}`,
            [`${issuer}:aud`]: "sts.amazonaws.com",
          },
        },
      },
    ],
  };
}

/** The Kubernetes platform. */
export class Platform extends pulumi.ComponentResource {
  readonly cluster: eks.Cluster;
  readonly karpenterQueue: aws.sqs.Queue;
  readonly nodeRole: aws.iam.Role;

  constructor(name: string, args: PlatformArgs, opts?: pulumi.ComponentResourceOptions) {
    super("fanda:infra:Platform", name, {}, opts);
    const parent = { parent: this };
    const nodeRole = new aws.iam.Role(
      `${name}-nodes`,
      {
        name: `KarpenterNodeRole-${args.clusterName}`,
        assumeRolePolicy: stableJson({
          Version: "2012-10-17",
          Statement: [
            {
              Effect: "Allow",
              Principal: { Service: "ec2.amazonaws.com" },
              Action: "sts:AssumeRole",
            },
          ],
        }),
      },
      parent,
    );
    for (const [i, policy] of [
      "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
      "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
      "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
      "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore",
    ].entries()) {
      new aws.iam.RolePolicyAttachment(
        `${name}-nodes-${i}`,
        { role: nodeRole.name, policyArn: policy },
        parent,
      );
    }
    this.nodeRole = nodeRole;
    const discovery = { "karpenter.sh/discovery": args.clusterName };
    this.cluster = new eks.Cluster(
      `${name}-eks`,
      {
        name: args.clusterName,
        version: args.version,
        vpcId: args.vpcId,
        privateSubnetIds: args.privateSubnetIds,
        publicSubnetIds: args.publicSubnetIds,
        authenticationMode: eks.AuthenticationMode.Api,
        skipDefaultNodeGroup: true,
        createOidcProvider: true,
        endpointPrivateAccess: true,
        endpointPublicAccess: true,
        instanceRoles: [nodeRole],
        tags: discovery,
        // One security group for every node: the one EKS creates for the cluster, which managed
        // node groups always carry. Karpenter's nodes select it by tag (below), and MSK, RDS and
        // Redis admit it: whichever node a pod lands on reaches the data stores and CoreDNS.
        skipDefaultSecurityGroups: true,
        // Without this the VPC CNI does not enforce NetworkPolicy objects at all.
        vpcCniOptions: { enableNetworkPolicy: true },
        // Without an access entry only the principal that created the cluster could use it.
        accessEntries: {
          admin: {
            principalArn: args.adminPrincipalArn,
            accessPolicies: {
              admin: { policyArn: EKS_ADMIN_POLICY, accessScope: { type: "cluster" } },
            },
          },
        },
      },
      parent,
    );
    new aws.ec2.Tag(
      `${name}-nodes-discovery`,
      {
        resourceId: this.cluster.nodeSecurityGroupId,
        key: "karpenter.sh/discovery",
        value: args.clusterName,
      },
      parent,
    );
    new eks.ManagedNodeGroup(
      `${name}-system`,
      {
        cluster: this.cluster,
        nodeRole,
        instanceTypes: [args.systemNodeType],
        scalingConfig: { minSize: 2, desiredSize: 2, maxSize: 3 },
        labels: { "fanda.dev/pool": "system" },
      },
      parent,
    );
    this.karpenterQueue = new aws.sqs.Queue(
      `${name}-karpenter-interruptions`,
      {
        messageRetentionSeconds: 300,
        sqsManagedSseEnabled: true,
      },
      parent,
    );
    // EventBridge may deliver to the queue only for its own rules in this account.
    new aws.sqs.QueuePolicy(
      `${name}-karpenter-interruptions`,
      {
        queueUrl: this.karpenterQueue.url,
        policy: this.karpenterQueue.arn.apply((arn) =>
          stableJson({
            Version: "2012-10-17",
            Statement: [
              {
                Sid: "EventBridgeDelivers",
                Effect: "Allow",
                Principal: { Service: ["events.amazonaws.com", "sqs.amazonaws.com"] },
                Action: "sqs:SendMessage",
                Resource: arn,
              },
            ],
          }),
        ),
      },
      parent,
    );
    for (const [i, pattern] of [
      { source: ["aws.health"], "detail-type": ["AWS Health Event"] },
      { source: ["aws.ec2"], "detail-type": ["EC2 Spot Instance Interruption Warning"] },
      { source: ["aws.ec2"], "detail-type": ["EC2 Instance Rebalance Recommendation"] },
      { source: ["aws.ec2"], "detail-type": ["EC2 Instance State-change Notification"] },
    ].entries()) {
      const rule = new aws.cloudwatch.EventRule(
        `${name}-karpenter-${i}`,
        { eventPattern: stableJson(pattern) },
        parent,
      );
      new aws.cloudwatch.EventTarget(
        `${name}-karpenter-${i}`,
        { rule: rule.name, arn: this.karpenterQueue.arn },
        parent,
      );
    }
    this.registerOutputs({ kubeconfig: this.cluster.kubeconfigJson });
  }

  /** A role a ServiceAccount assumes through IRSA. */
  serviceAccountRole(
    name: string,
    namespace: pulumi.Input<string>,
    serviceAccount: string,
  ): aws.iam.Role {
    return new aws.iam.Role(
      name,
      {
        assumeRolePolicy: pulumi
          .all([this.cluster.oidcProviderArn, this.cluster.oidcProviderUrl, namespace])
          .apply(([arn, url, ns]) => stableJson(irsaTrust(arn, url, ns, serviceAccount))),
      },
      { parent: this },
    );
  }
}
