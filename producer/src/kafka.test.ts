import { describe, expect, test } from "bun:test";
import { createKafka, dlqTopicOf, type KafkaSettings, unsecuredJwt } from "./kafka.ts";
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
