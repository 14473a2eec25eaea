import { describe, expect, test } from "bun:test";
import { FandaError } from "./errors.ts";
import {
  createKafka,
  dlqTopicOf,
  type KafkaSettings,
  kafkaErrorType,
  mskIamTokenProvider,
  unsecuredJwt,
} from "./kafka.ts";
import { createLogger } from "./log.ts";

const logger = createLogger({ level: "error" });
const base: KafkaSettings = {
  brokers: ["127.0.0.1:9092"],
  auth: "plaintext",
  ssl: false,
  topic: "t",
  clientId: "c",
};

describe("kafka helpers", () => {
  test("the DLQ topic is <topic>.dlq", () => {
    expect(dlqTopicOf("fanda-notifications")).toBe("fanda-notifications.dlq");
  });

  test("an unsecured JWT has alg none, sub, iat and exp, and no signature", () => {
    const token = unsecuredJwt("svc", 60, Date.UTC(2026, 0, 1));
    const [header, payload, signature] = token.split(".");
    expect(JSON.parse(Buffer.from(header ?? "", "base64url").toString())).toEqual({ alg: "none" });
    expect(JSON.parse(Buffer.from(payload ?? "", "base64url").toString())).toEqual({
      sub: "svc",
      iat: 1767225600,
      exp: 1767225660,
    });
    expect(signature).toBe("");
  });

  test("iam without a region is refused when the client is built", () => {
    expect(() => createKafka({ ...base, auth: "iam", ssl: true }, { logger })).toThrow(
      /AWS_REGION/,
    );
  });

  test("scram without credentials is refused when the client is built", () => {
    expect(() => createKafka({ ...base, auth: "scram", ssl: true }, { logger })).toThrow(
      /username and password/,
    );
  });

  test("every auth mode builds a client", () => {
    for (const settings of [
      base,
      { ...base, auth: "iam", ssl: true, region: "eu-west-1" },
      { ...base, auth: "scram", ssl: true, username: "u", password: "p" },
      { ...base, auth: "oauthbearer" },
    ] satisfies KafkaSettings[]) {
      expect(createKafka(settings, { logger })).toBeDefined();
    }
  });
});

describe("MSK IAM token", () => {
  const staticCredentials = async () => ({
    accessKeyId: "AKIDEXAMPLE",
    secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
  });

  function presigned(token: string): URL {
    return new URL(Buffer.from(token, "base64url").toString("utf8"));
  }

  test("is a SigV4-presigned kafka-cluster:Connect URL for the region, valid 15 minutes", async () => {
    const { value } = await mskIamTokenProvider("ap-northeast-2", staticCredentials)();
    const url = presigned(value);
    expect(url.host).toBe("kafka.ap-northeast-2.amazonaws.com");
    expect(url.searchParams.get("Action")).toBe("kafka-cluster:Connect");
    expect(url.searchParams.get("X-Amz-Algorithm")).toBe("AWS4-HMAC-SHA256");
    expect(url.searchParams.get("X-Amz-Credential")).toMatch(
      /^AKIDEXAMPLE\/\d{8}\/ap-northeast-2\/kafka-cluster\/aws4_request$/,
    );
    expect(url.searchParams.get("X-Amz-Expires")).toBe("900");
    expect(url.searchParams.get("X-Amz-Signature")).toMatch(/^[0-9a-f]{64}$/);
    expect(value).not.toContain("wJalrXUtnFEMI");
  });

  test("signs with the default credential chain (what Lambda and IRSA use)", async () => {
    const saved = { ...process.env };
    process.env.AWS_ACCESS_KEY_ID = "AKIDFROMENV";
    process.env.AWS_SECRET_ACCESS_KEY = "secret-from-env";
    process.env.AWS_SESSION_TOKEN = "session-token-from-env";
    try {
      const url = presigned((await mskIamTokenProvider("eu-west-1")()).value);
      expect(url.searchParams.get("X-Amz-Credential")).toStartWith("AKIDFROMENV/");
      expect(url.searchParams.get("X-Amz-Security-Token")).toBe("session-token-from-env");
    } finally {
      for (const k of ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"]) {
        if (saved[k] === undefined) delete process.env[k];
        else process.env[k] = saved[k];
      }
    }
  });

  test("a credentials failure is a retriable FandaError with the cause", async () => {
    const cause = new Error("no credentials");
    const provider = mskIamTokenProvider("eu-west-1", async () => {
      throw cause;
    });
    const err = await provider().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FandaError);
    expect((err as FandaError).retriable).toBe(true);
    expect((err as FandaError).message).toContain("generating MSK IAM token");
  });
});

describe("kafkaErrorType", () => {
  test("reads the type through kafkajs wrappers, or from its known messages", () => {
    const typed = Object.assign(new Error("x"), { type: "UNKNOWN_TOPIC_OR_PARTITION" });
    expect(kafkaErrorType(new Error("wrapper", { cause: typed }))).toBe(
      "UNKNOWN_TOPIC_OR_PARTITION",
    );
    expect(kafkaErrorType(new Error("Request is not valid given the current SASL state"))).toBe(
      "ILLEGAL_SASL_STATE",
    );
    expect(kafkaErrorType(new Error("something else"))).toBeUndefined();
    expect(kafkaErrorType("not an error")).toBeUndefined();
    for (const message of ["constructor", "toString", "__proto__", "hasOwnProperty"]) {
      expect(kafkaErrorType(new Error(message))).toBeUndefined();
    }
  });
});
