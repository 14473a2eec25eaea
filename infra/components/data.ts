/**
 * The delivery log (RDS MySQL 8) and the idempotency store (ElastiCache Valkey/Redis):
 * private subnets, encrypted, reachable only from the EKS nodes. The database password is
 * managed by RDS in Secrets Manager; Redis has TLS and an auth token, also kept there.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";

/** Arguments of {@link Data}. */
export interface DataArgs {
  vpcId: pulumi.Input<string>;
  subnetIds: pulumi.Input<string>[];
  /** The EKS nodes' security group: the only client allowed. */
  clientSecurityGroupId: pulumi.Input<string>;
  multiAz: boolean;
  dbInstanceClass: string;
  dbAllocatedStorage: number;
  cacheNodeType: string;
  cacheReplicas: number;
  /** Prefix of the Secrets Manager names (`fanda/<env>`), so stacks can share an account. */
  secretPrefix: string;
}

/** The database the delivery log lives in. */
export const DATABASE_NAME = "fanda";
/** The properties of the endpoints secret, which the ExternalSecret templates read. */
export const ENDPOINT_PROPERTIES = [
  "mysqlHost",
  "mysqlPort",
  "mysqlDatabase",
  "redisHost",
  "redisPort",
] as const;

/** RDS and ElastiCache. */
export class Data extends pulumi.ComponentResource {
  readonly db: aws.rds.Instance;
  readonly cache: aws.elasticache.ReplicationGroup;
  readonly cacheAuthSecret: aws.secretsmanager.Secret;
  /** Host names and ports (not secret, but read with the credentials to build the URLs). */
  readonly endpointsSecret: aws.secretsmanager.Secret;

  constructor(name: string, args: DataArgs, opts?: pulumi.ComponentResourceOptions) {
    super("fanda:infra:Data", name, {}, opts);
    const parent = { parent: this };
    const sg = (suffix: string, port: number) =>
      new aws.ec2.SecurityGroup(
        `${name}-${suffix}`,
        {
          vpcId: args.vpcId,
          description: `${suffix}: ${port} from the EKS nodes only`,
          ingress: [
            {
              protocol: "tcp",
              fromPort: port,
              toPort: port,
              securityGroups: [args.clientSecurityGroupId],
            },
          ],
        },
        parent,
      );
    const dbSg = sg("mysql", 3306);
    const cacheSg = sg("redis", 6379);
    const dbSubnets = new aws.rds.SubnetGroup(
      `${name}-mysql`,
      { subnetIds: args.subnetIds },
      parent,
    );
    this.db = new aws.rds.Instance(
      `${name}-mysql`,
      {
        engine: "mysql",
        engineVersion: "8.0",
        instanceClass: args.dbInstanceClass,
        allocatedStorage: args.dbAllocatedStorage,
        dbName: DATABASE_NAME,
        username: "fanda",
        manageMasterUserPassword: true,
        multiAz: args.multiAz,
        storageEncrypted: true,
        publiclyAccessible: false,
        dbSubnetGroupName: dbSubnets.name,
        vpcSecurityGroupIds: [dbSg.id],
        backupRetentionPeriod: args.multiAz ? 14 : 3,
        deletionProtection: args.multiAz,
        skipFinalSnapshot: !args.multiAz,
        finalSnapshotIdentifier: args.multiAz ? `${name}-mysql-final` : undefined,
        autoMinorVersionUpgrade: true,
      },
      parent,
    );
    const token = aws.secretsmanager.getRandomPasswordOutput(
      { passwordLength: 48, excludePunctuation: true },
      parent,
    );
    this.cacheAuthSecret = new aws.secretsmanager.Secret(
      `${name}-redis-auth`,
      {
        name: `${args.secretPrefix}/redis-auth`,
        description: "ElastiCache auth token for the Fanda processor",
      },
      parent,
    );
    // getRandomPassword answers anew on every run: the first token is kept (here and on the
    // cluster), or each `pulumi up` would rotate it under the running processors.
    new aws.secretsmanager.SecretVersion(
      `${name}-redis-auth`,
      {
        secretId: this.cacheAuthSecret.id,
        secretString: token.randomPassword,
      },
      { parent: this, ignoreChanges: ["secretString"] },
    );
    const cacheSubnets = new aws.elasticache.SubnetGroup(
      `${name}-redis`,
      { subnetIds: args.subnetIds },
      parent,
    );
    this.cache = new aws.elasticache.ReplicationGroup(
      `${name}-redis`,
      {
        description: "Fanda idempotency keys",
        engine: "valkey",
        engineVersion: "8.0",
        nodeType: args.cacheNodeType,
        numCacheClusters: 1 + args.cacheReplicas,
        automaticFailoverEnabled: args.cacheReplicas > 0,
        multiAzEnabled: args.multiAz,
        transitEncryptionEnabled: true,
        atRestEncryptionEnabled: true,
        authToken: pulumi.secret(token.randomPassword),
        subnetGroupName: cacheSubnets.name,
        securityGroupIds: [cacheSg.id],
        port: 6379,
      },
      { parent: this, ignoreChanges: ["authToken"] },
    );
    this.endpointsSecret = new aws.secretsmanager.Secret(
      `${name}-endpoints`,
      {
        name: `${args.secretPrefix}/endpoints`,
        description: "MySQL and Redis endpoints; External Secrets builds MYSQL_URL and REDIS_URL",
      },
      parent,
    );
    new aws.secretsmanager.SecretVersion(
      `${name}-endpoints`,
      {
        secretId: this.endpointsSecret.id,
        secretString: pulumi
          .all([this.db.address, this.db.port, this.cache.primaryEndpointAddress, this.cache.port])
          .apply(([mysqlHost, mysqlPort, redisHost, redisPort]) => {
            const value: Record<(typeof ENDPOINT_PROPERTIES)[number], string> = {
              mysqlHost,
              mysqlPort: String(mysqlPort),
              mysqlDatabase: DATABASE_NAME,
              redisHost,
              redisPort: String(redisPort ?? 6379),
            };
            return JSON.stringify(value);
          }),
      },
      parent,
    );
    this.registerOutputs({
      dbEndpoint: this.db.endpoint,
      cacheEndpoint: this.cache.primaryEndpointAddress,
    });
  }
}
