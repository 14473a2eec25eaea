/**
 * Starts aws-ses-v2-local (an SES v2 emulator) for the local run, with an account whose
 * `GetAccount` answers MaxSendRate like a production SES account would.
 *
 *   bun scripts/ses-local.ts [--port 8005]
 *
 * Stored mail: `GET /store` (JSON) or the web viewer at the root URL.
 */

import type { AddressInfo } from "node:net";
import { parseArgs } from "node:util";
import sesLocal from "aws-ses-v2-local";

/** A plausible production account: 14 emails/s, 50,000 a day. */
export const LOCAL_SES_ACCOUNT = {
  DedicatedIpAutoWarmupEnabled: false,
  Details: {
    AdditionalContactEmailAddresses: [],
    ContactLanguage: "EN",
    MailType: "TRANSACTIONAL",
    ReviewDetails: { CaseId: "local", Status: "GRANTED" },
    UseCaseDescription: "Fanda local run",
    WebsiteURL: "https://example.com",
  },
  EnforcementStatus: "HEALTHY",
  ProductionAccessEnabled: true,
  SendingEnabled: true,
  SendQuota: { Max24HourSend: 50000, MaxSendRate: 14, SentLast24Hours: 0 },
  SuppressionAttributes: { SuppressedReasons: [] },
};

if (import.meta.main) {
  const { values } = parseArgs({ options: { port: { type: "string", default: "8005" } } });
  process.env.AWS_SES_ACCOUNT ??= JSON.stringify(LOCAL_SES_ACCOUNT);
  const server = await sesLocal({ host: "127.0.0.1", port: Number(values.port) });
  console.log(
    `SES emulator on http://127.0.0.1:${(server.address() as AddressInfo).port} (GET /store, web viewer at /)`,
  );
}
