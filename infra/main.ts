/** The Pulumi entry point (Pulumi.yaml `main`): reads the stack's `fanda:*` config. */
import * as pulumi from "@pulumi/pulumi";
import { fanda } from "./index.ts";

const cfg = new pulumi.Config("fanda");
const raw = {
  env: cfg.require("env"),
  region: new pulumi.Config("aws").require("region"),
  vpcCidr: cfg.require("vpcCidr"),
  azCount: cfg.requireNumber("azCount"),
  natPerAz: cfg.requireBoolean("natPerAz"),
  multiAz: cfg.requireBoolean("multiAz"),
  mskInstanceType: cfg.require("mskInstanceType"),
  mskBrokersPerAz: cfg.requireNumber("mskBrokersPerAz"),
  mskKafkaVersion: cfg.require("mskKafkaVersion"),
  eksVersion: cfg.require("eksVersion"),
  systemNodeType: cfg.require("systemNodeType"),
  dbInstanceClass: cfg.require("dbInstanceClass"),
  dbAllocatedStorage: cfg.requireNumber("dbAllocatedStorage"),
  cacheNodeType: cfg.require("cacheNodeType"),
  cacheReplicas: cfg.requireNumber("cacheReplicas"),
  lambdaReservedConcurrency: cfg.requireNumber("lambdaReservedConcurrency"),
  sesDomain: cfg.require("sesDomain"),
  adminPrincipalArn: cfg.require("adminPrincipalArn"),
  namespace: cfg.require("namespace"),
  repository: cfg.require("repository"),
  partitions: cfg.requireNumber("partitions"),
  slackChannel: cfg.require("slackChannel"),
  emailTo: cfg.require("emailTo"),
  ...(cfg.get("alarmEmail") ? { alarmEmail: cfg.get("alarmEmail") } : {}),
};

const { outputs } = fanda(raw);
/** Every value other layers derive (scripts/env-sync.ts writes it into the overlay). */
export const environment = outputs.environment;
export const bucket = outputs.bucket;
export const producerFunction = outputs.producerFunction;
export const producerFailureQueueUrl = outputs.producerFailureQueueUrl;
export const mskBootstrapBrokers = outputs.mskBootstrapBrokers;
export const dbEndpoint = outputs.dbEndpoint;
export const redisEndpoint = outputs.redisEndpoint;
export const ecrRepository = outputs.ecrRepository;
export const processorRoleArn = outputs.processorRoleArn;
export const karpenterInterruptionQueue = outputs.karpenterInterruptionQueue;
export const kubeconfig = outputs.kubeconfig;
