/** The SES emulator's recording front: what a real SES v2 client sent, tags included. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { GetAccountCommand, SESv2Client, SendEmailCommand } from "@aws-sdk/client-sesv2";
import { type SesLocal, startSesLocal } from "./ses-local.ts";

/** An SES v2 client for an emulator at `url`, one attempt per call. */
const clientOf = (url: string) =>
  new SESv2Client({
    region: "ap-northeast-2",
    endpoint: url,
    credentials: { accessKeyId: "local", secretAccessKey: "local" },
    maxAttempts: 1,
  });

/** One plain email through `via`. */
const sendPlain = (via: SESv2Client) =>
  via.send(
    new SendEmailCommand({
      FromEmailAddress: "fanda@example.com",
      Destination: { ToAddresses: ["ops@example.com"] },
      Content: { Simple: { Subject: { Data: "s" }, Body: { Text: { Data: "b" } } } },
    }),
  );

let ses: SesLocal;
let client: SESv2Client;

beforeAll(async () => {
  ses = await startSesLocal();
  client = clientOf(ses.url);
});

afterAll(async () => {
  client.destroy();
  await ses.stop();
});

const send = (subject: string, tags: { Name: string; Value: string }[]) =>
  client.send(
    new SendEmailCommand({
      FromEmailAddress: "fanda@example.com",
      Destination: { ToAddresses: ["ops@example.com"] },
      Content: {
        Simple: { Subject: { Data: subject }, Body: { Text: { Data: "body" } } },
      },
      EmailTags: tags,
    }),
  );

describe("ses-local", () => {
  test("records each accepted SendEmail with its EmailTags, under the MessageId the emulator stored", async () => {
    const tags = [
      { Name: "event", Value: "0123" },
      { Name: "trace_id", Value: "0af7651916cd43dd8448eb211c80319c" },
    ];
    const { MessageId } = await send("first", tags);
    expect(MessageId).toBeString();
    expect(ses.sent.at(-1)).toEqual({
      messageId: MessageId as string,
      to: ["ops@example.com"],
      subject: "first",
      emailTags: tags,
    });
    const listed = (await (await fetch(`${ses.url}/sent`)).json()) as unknown[];
    expect(listed.at(-1)).toEqual(ses.sent.at(-1) as never);
    // The emulator stored the same message (without the tags, which it does not keep).
    const store = (await (await fetch(`${ses.url}/store`)).json()) as {
      emails: { messageId: string; subject: string }[];
    };
    expect(store.emails.find((e) => e.messageId === MessageId)?.subject).toBe("first");
  });

  test("passes the rest through: GetAccount, the viewer, refusals (not recorded)", async () => {
    const account = await client.send(new GetAccountCommand({}));
    expect(account.SendQuota?.MaxSendRate).toBe(14);
    const viewer = await fetch(`${ses.url}/`);
    expect(viewer.status).toBe(200);
    expect(await viewer.text()).toContain("<html");
    const before = ses.sent.length;
    const refused = await fetch(`${ses.url}/v2/email/outbound-emails`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "AWS4-HMAC-SHA256 x" },
      body: JSON.stringify({ Content: { Simple: { Subject: { Data: "s" }, Body: {} } } }),
    });
    expect(refused.status).toBe(400);
    expect(ses.sent.length).toBe(before);
  });
});

describe("ses-local with a fixed send rate", () => {
  let limited: SesLocal;
  let limitedClient: SESv2Client;
  let clock = 1_000_000;

  beforeAll(async () => {
    limited = await startSesLocal({ maxSendRate: 2, now: () => clock });
    limitedClient = clientOf(limited.url);
  });

  afterAll(async () => {
    limitedClient.destroy();
    await limited.stop();
  });

  const sendLimited = () => sendPlain(limitedClient);

  test("GetAccount reports the rate, and a day's worth of it as the daily quota", async () => {
    const account = await limitedClient.send(new GetAccountCommand({}));
    expect(account.SendQuota?.MaxSendRate).toBe(2);
    expect(account.SendQuota?.Max24HourSend).toBe(2 * 86_400);
    expect(account.SendingEnabled).toBe(true);
  });

  test("a send over the rate is refused as SES v2 refuses it (429 TooManyRequestsException) and counted", async () => {
    await sendLimited();
    await sendLimited();
    const over = await sendLimited().then(
      () => undefined,
      (err: { name: string; message: string; $metadata: { httpStatusCode?: number } }) => err,
    );
    expect(over?.name).toBe("TooManyRequestsException");
    expect(over?.message).toBe("Maximum sending rate exceeded.");
    expect(over?.$metadata.httpStatusCode).toBe(429);
    expect(limited.throttled()).toBe(1);
    expect(await (await fetch(`${limited.url}/throttled`)).json()).toBe(1);
    expect(limited.sent.length).toBe(2);
    clock += 500; // half a second at 2/s: one more
    await sendLimited();
    expect(limited.sent.length).toBe(3);
  });

  test("a rate that is not a positive number is refused", async () => {
    for (const maxSendRate of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      await expect(startSesLocal({ maxSendRate })).rejects.toBeInstanceOf(RangeError);
    }
  });
});

describe("ses-local with a daily quota", () => {
  let ses: SesLocal;
  let client: SESv2Client;

  beforeAll(async () => {
    ses = await startSesLocal({ dailyQuota: 2 });
    client = clientOf(ses.url);
  });

  afterAll(async () => {
    client.destroy();
    await ses.stop();
  });

  const send = () => sendPlain(client);

  test("after the quota every send is refused as SES refuses it, until the quota is raised", async () => {
    await send();
    await send();
    const over = await send().then(
      () => undefined,
      (err: { name: string; message: string; $metadata: { httpStatusCode?: number } }) => err,
    );
    expect(over?.name).toBe("TooManyRequestsException");
    expect(over?.message).toBe("Daily message quota exceeded.");
    expect(over?.$metadata.httpStatusCode).toBe(429);
    expect(ses.quotaRefused()).toBe(1);
    const account = await client.send(new GetAccountCommand({}));
    expect(account.SendQuota?.Max24HourSend).toBe(2);
    expect(account.SendQuota?.SentLast24Hours).toBe(2);
    ses.setDailyQuota(3);
    await send();
    expect(ses.sent.length).toBe(3);
  });

  test("a quota that is not a whole number >= 0 is refused", async () => {
    for (const dailyQuota of [-1, 1.5, Number.NaN]) {
      await expect(startSesLocal({ dailyQuota })).rejects.toBeInstanceOf(RangeError);
    }
    expect(() => ses.setDailyQuota(-2)).toThrow(RangeError);
  });
});
