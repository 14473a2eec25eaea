/** VPC across AZs: public and private subnets, NAT (one, or one per AZ), S3 and Secrets Manager endpoints. */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";

/** Arguments of {@link Network}. */
export interface NetworkArgs {
  cidr: string;
  azCount: number;
  /** One NAT gateway per AZ (prod) or a single shared one (dev). */
  natPerAz: boolean;
  region: string;
  /** The Karpenter discovery tag value (the EKS cluster name). */
  clusterName: string;
}

/** Splits a VPC CIDR into /20s: private subnets first, then public. */
export function subnetCidrs(cidr: string, count: number): { private: string[]; public: string[] } {
  const [base, bits] = cidr.split("/");
  const prefix = Number(bits);
  if (!base || prefix > 20) throw new Error(`VPC CIDR ${cidr} is too small for /20 subnets`);
  const octets = base.split(".").map(Number);
  const start = ((octets[0] ?? 0) << 24) + ((octets[1] ?? 0) << 16) + ((octets[2] ?? 0) << 8);
  const at = (i: number) => {
    const n = start + i * 4096;
    return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.0/20`;
  };
  return {
    private: Array.from({ length: count }, (_, i) => at(i)),
    public: Array.from({ length: count }, (_, i) => at(i + 8)),
  };
}

/** The network every other component lives in. */
export class Network extends pulumi.ComponentResource {
  readonly vpc: aws.ec2.Vpc;
  readonly privateSubnetIds: pulumi.Output<string>[];
  readonly publicSubnetIds: pulumi.Output<string>[];

  constructor(name: string, args: NetworkArgs, opts?: pulumi.ComponentResourceOptions) {
    super("fanda:infra:Network", name, {}, opts);
    const parent = { parent: this };
    const azs = aws.getAvailabilityZonesOutput({ state: "available" }, parent).names;
    const cidrs = subnetCidrs(args.cidr, args.azCount);
    this.vpc = new aws.ec2.Vpc(
      `${name}-vpc`,
      {
        cidrBlock: args.cidr,
        enableDnsHostnames: true,
        enableDnsSupport: true,
        tags: { Name: `${name}-vpc` },
      },
      parent,
    );
    const igw = new aws.ec2.InternetGateway(`${name}-igw`, { vpcId: this.vpc.id }, parent);
    const publicRt = new aws.ec2.RouteTable(
      `${name}-public`,
      {
        vpcId: this.vpc.id,
        routes: [{ cidrBlock: "0.0.0.0/0", gatewayId: igw.id }],
      },
      parent,
    );
    const publics = cidrs.public.map((cidr, i) => {
      const subnet = new aws.ec2.Subnet(
        `${name}-public-${i}`,
        {
          vpcId: this.vpc.id,
          cidrBlock: cidr,
          availabilityZone: azs.apply((a) => a[i] ?? `${args.region}a`),
          mapPublicIpOnLaunch: false,
          tags: { Name: `${name}-public-${i}`, "kubernetes.io/role/elb": "1" },
        },
        parent,
      );
      new aws.ec2.RouteTableAssociation(
        `${name}-public-${i}`,
        { subnetId: subnet.id, routeTableId: publicRt.id },
        parent,
      );
      return subnet;
    });
    const nats = publics.slice(0, args.natPerAz ? args.azCount : 1).map((subnet, i) => {
      const eip = new aws.ec2.Eip(`${name}-nat-${i}`, { domain: "vpc" }, parent);
      return new aws.ec2.NatGateway(
        `${name}-nat-${i}`,
        { subnetId: subnet.id, allocationId: eip.id },
        parent,
      );
    });
    const privateRts: aws.ec2.RouteTable[] = [];
    const privates = cidrs.private.map((cidr, i) => {
      const subnet = new aws.ec2.Subnet(
        `${name}-private-${i}`,
        {
          vpcId: this.vpc.id,
          cidrBlock: cidr,
          availabilityZone: azs.apply((a) => a[i] ?? `${args.region}a`),
          tags: {
            Name: `${name}-private-${i}`,
            "kubernetes.io/role/internal-elb": "1",
            "karpenter.sh/discovery": args.clusterName,
          },
        },
        parent,
      );
      const nat = nats[args.natPerAz ? i : 0] as aws.ec2.NatGateway;
      const rt = new aws.ec2.RouteTable(
        `${name}-private-${i}`,
        {
          vpcId: this.vpc.id,
          routes: [{ cidrBlock: "0.0.0.0/0", natGatewayId: nat.id }],
        },
        parent,
      );
      privateRts.push(rt);
      new aws.ec2.RouteTableAssociation(
        `${name}-private-${i}`,
        { subnetId: subnet.id, routeTableId: rt.id },
        parent,
      );
      return subnet;
    });
    new aws.ec2.VpcEndpoint(
      `${name}-s3`,
      {
        vpcId: this.vpc.id,
        serviceName: `com.amazonaws.${args.region}.s3`,
        vpcEndpointType: "Gateway",
        routeTableIds: privateRts.map((rt) => rt.id),
      },
      parent,
    );
    const endpointSg = new aws.ec2.SecurityGroup(
      `${name}-endpoints`,
      {
        vpcId: this.vpc.id,
        description: "Interface endpoints: HTTPS from inside the VPC",
        ingress: [{ protocol: "tcp", fromPort: 443, toPort: 443, cidrBlocks: [args.cidr] }],
      },
      parent,
    );
    new aws.ec2.VpcEndpoint(
      `${name}-secretsmanager`,
      {
        vpcId: this.vpc.id,
        serviceName: `com.amazonaws.${args.region}.secretsmanager`,
        vpcEndpointType: "Interface",
        privateDnsEnabled: true,
        subnetIds: privates.map((s) => s.id),
        securityGroupIds: [endpointSg.id],
      },
      parent,
    );
    this.privateSubnetIds = privates.map((s) => s.id);
    this.publicSubnetIds = publics.map((s) => s.id);
    this.registerOutputs({ vpcId: this.vpc.id });
  }
}
