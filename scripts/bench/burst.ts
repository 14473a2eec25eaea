/**
 * Benchmark: a burst of uploads at real provider limits. `--uploads` S3 events published in one
 * burst to a new topic; one processor (its own process, Redis + MySQL delivery log) delivers
 * each to three channels: Slack (the test server at Slack's ~1 message/s per channel, digests
 * on), email (the SES emulator at a fixed send rate, which GetAccount reports and which it
 * enforces with SES's 429) and a webhook sink (unthrottled). Bounded in count and time,
 * loopback only. Needs scripts/stack up.
 *
 *   bun scripts/bench/burst.ts [--uploads 5000] [--ses-rate 14] [--timeout 900]
 *       [--instances 1] [--csv lag.csv] [--plot lag.svg]
 *       [--ses-daily-quota N [--quota-raised-after S]]
 *
 * Measures, from the first publish: when the last notification reached each channel, the Slack
 * messages (digests) and 429s, the emails and SES throttling refusals, the processor's peak
 * RSS, the consumer lag every second (CSV + SVG: committed offsets vs the end of the topic),
 * the dead-lettered count (topic and metric), and which alerts of
 * kustomize/base/monitoring/prometheus-rule.yaml would have fired: the processor's /metrics is
 * scraped every second and promtool evaluates the rules over those samples.
 * `--ses-daily-quota N` makes the SES account run out of its day after N emails (SES then
 * answers every send "Daily message quota exceeded"); `--quota-raised-after S` lifts the quota
 * S seconds after the first publish (AWS raised it, or the 24-hour window freed up), so the
 * run shows what the held email channel does and how it catches up.
 * `--instances N` runs N processors in one group (what scaling out does against limits that
 * are per account or per Slack channel, not per pod); RSS is then the largest of them.
 */
import { existsSync } from "node:fs";
import mysql from "mysql2/promise";
import type { Notification } from "../../core/contract.ts";
import { createPublisher, dlqTopicOf, ensureTopics } from "../../core/kafka.ts";
import { toNotification } from "../../producer/src/s3-event.ts";
import {
  freePort,
  groupLag,
  localKafka,
  localProcessorEnv,
  PROCESSOR_TEMPLATES_DIR,
  rssMbOf,
} from "../../test/support/local.ts";
import { startSesLocal } from "../ses-local.ts";
import { startSlackServer } from "../slack-server.ts";
import { checkOptions, orExit, parseOptions } from "./args.ts";
import { firedAlerts, metricNamesOf, parseMetrics, timeSeriesSvg } from "./timeline.ts";

const values = orExit(() =>
  parseOptions({
    uploads: { default: "5000" },
    "ses-rate": { default: "14" },
    timeout: { default: "900" },
    instances: { default: "1" },
    "ses-daily-quota": {},
    "quota-raised-after": {},
    csv: {},
    plot: {},
  }),
);
const { ints } = orExit(() =>
  checkOptions({
    uploads: { value: values.uploads, min: 1, max: 200_000 },
    "ses-rate": { value: values["ses-rate"], min: 1, max: 1000 },
    timeout: { value: values.timeout, min: 10, max: 3600 },
    instances: { value: values.instances, min: 1, max: 6 },
  }),
);
/** A whole-number option that may be left out. */
const optionalInt = (name: "ses-daily-quota" | "quota-raised-after", min: number, max: number) =>
  values[name] === undefined
    ? undefined
    : orExit(() => checkOptions({ [name]: { value: values[name], min, max } })).ints[name];
const dailyQuota = optionalInt("ses-daily-quota", 0, 200_000);
const quotaRaisedAfter = optionalInt("quota-raised-after", 1, 3600);
if (quotaRaisedAfter !== undefined && dailyQuota === undefined) {
  console.error("--quota-raised-after needs --ses-daily-quota");
  process.exit(2);
}
let quotaRaisedAt: number | undefined;
const uploads = ints.uploads;
const sesRate = ints["ses-rate"];
const timeoutSeconds = ints.timeout;
const instances = ints.instances;

const root = `${import.meta.dir}/../..`;
const ruleFile = `${root}/kustomize/base/monitoring/prometheus-rule.yaml`;
const promtool = [
  process.env.PROMTOOL,
  `${root}/.cache/tools/prometheus/usr/bin/promtool`,
  Bun.which("promtool") ?? undefined,
].find((p): p is string => !!p && existsSync(p));
const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const mysqlServer = process.env.MYSQL_SERVER_URL ?? "mysql://root@127.0.0.1:3306";
const run = crypto.randomUUID().slice(0, 8);
const topic = `fanda-bench-burst-${run}`;
const database = `fanda_bench_burst_${run}`;
const kafka = localKafka("fanda-bench-burst", { topic });
const CHANNELS = ["slack", "email", "webhook"] as const;
type ChannelName = (typeof CHANNELS)[number];

// Which event ids each channel has received, and when the last of them arrived.
const seen: Record<ChannelName, Set<string>> = {
  slack: new Set(),
  email: new Set(),
  webhook: new Set(),
};
const lastAt: Record<ChannelName, number> = { slack: 0, email: 0, webhook: 0 };
const arrived = (channel: ChannelName, eventId: string) => {
  const s = seen[channel];
  if (s.has(eventId)) return;
  s.add(eventId);
  lastAt[channel] = Date.now();
};

const sink = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  async fetch(req) {
    arrived("webhook", ((await req.json()) as Notification).eventId);
    return new Response(null, { status: 204 });
  },
});
let slackMessages = 0;
const slack = startSlackServer({
  // Slack's chat.postMessage limit, as the server's defaults: ~1/s per channel, short bursts.
  ratePerSecond: 1,
  burst: 3,
  keepMessages: false,
  onMessage: (m) => {
    slackMessages++;
    const ids = m.metadata?.event_payload.event_ids;
    if (typeof ids === "string") for (const id of ids.split(",")) arrived("slack", id);
  },
});
const ses = await startSesLocal({
  maxSendRate: sesRate,
  ...(dailyQuota === undefined ? {} : { dailyQuota }),
});
let emailsRead = 0;
const readEmails = () => {
  for (; emailsRead < ses.sent.length; emailsRead++) {
    const id = ses.sent[emailsRead]?.emailTags.find((t) => t.Name === "event")?.Value;
    if (id) arrived("email", id);
  }
};

const conn = await mysql.createConnection(mysqlServer);
await conn.query(`CREATE DATABASE \`${database}\``);
await conn.end();
await ensureTopics(kafka, topic, { partitions: 6 });

const ports = await Promise.all(Array.from({ length: instances }, () => freePort()));
const envOf = (port: number) =>
  localProcessorEnv(
    { topic, port, redisUrl, mysqlUrl: `${mysqlServer}/${database}` },
    {
      ENABLED_CHANNELS: CHANNELS.join(","),
      WEBHOOK_URL: `http://127.0.0.1:${sink.port}/notify`,
      SLACK_BOT_TOKEN: "xoxb-local",
      SLACK_API_URL: slack.apiUrl,
      SLACK_DEFAULT_CHANNEL: "#uploads",
      // Slack pacing (1/s, burst 3) and digests (up to 100) are the processor's defaults.
      SLACK_RATE_PER_SECOND: undefined,
      SLACK_BURST: undefined,
      SLACK_DIGEST: "true",
      SLACK_DIGEST_MAX: undefined,
      SES_ENDPOINT: ses.url,
      SES_FROM: "fanda@example.com",
      EMAIL_TO: "ops@example.com",
      // Unset: the channel reads the rate from GetAccount, as in production.
      SES_MAX_SEND_RATE: undefined,
      AWS_REGION: "ap-northeast-2",
      AWS_ACCESS_KEY_ID: "local",
      AWS_SECRET_ACCESS_KEY: "local",
      TEMPLATES_DIR: PROCESSOR_TEMPLATES_DIR,
      LOG_LEVEL: "warn",
    },
  );
const processors = ports.map((port) =>
  Bun.spawn(["bun", "processor/src/main.ts"], {
    cwd: root,
    // Unset (undefined) settings are left out, so the processor's defaults apply.
    env: Object.fromEntries(
      Object.entries(envOf(port)).filter(([, v]) => v !== undefined),
    ) as Record<string, string>,
    stdout: "inherit",
    stderr: "inherit",
  }),
);
const readyBy = Date.now() + 60_000;
for (const [i, port] of ports.entries()) {
  for (;;) {
    const ok = await fetch(`http://127.0.0.1:${port}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    if (Date.now() > readyBy || processors[i]?.exitCode !== null)
      throw new Error("processor not ready");
    await Bun.sleep(200);
  }
}

/** The largest RSS of the processors, MB. */
const rssMb = () =>
  Math.max(
    ...processors.map((p) => {
      try {
        return rssMbOf(p.pid);
      } catch {
        return 0;
      }
    }),
  );
/** Each processor's /metrics text ("" when it does not answer). */
const scrape = () =>
  Promise.all(
    ports.map((port) =>
      fetch(`http://127.0.0.1:${port}/metrics`).then(
        (r) => r.text(),
        () => "",
      ),
    ),
  );
/** A series of processor `i`, labelled like Prometheus labels each pod's samples. */
const podSeries = (s: string, i: number) => {
  const pod = `pod="fanda-processor-${i}"`;
  return s.endsWith("}") ? `${s.slice(0, -1)},${pod}}` : `${s}{${pod}}`;
};
let peakRss = rssMb();
const rssSampler = setInterval(() => {
  peakRss = Math.max(peakRss, rssMb());
}, 250);

const admin = kafka.admin();
await admin.connect();
const groupId = `${topic}-processor`;
/** Messages in the topic not yet committed by the processor's group. */
const lag = () => groupLag(admin, topic, groupId);

// The burst: every upload published as fast as the publisher goes, 1000 per call.
let seq = 0;
const notification = (): Notification =>
  toNotification(
    {
      bucket: "fanda-bench",
      key: `reports/positive/burst-${run}-${seq}.pdf`,
      eventName: "ObjectCreated:Put",
      eventTime: new Date().toISOString(),
      sequencer: (seq++).toString(16).padStart(16, "0"),
      size: 1024,
      eTag: "d41d8cd98f00b204e9800998ecf8427e",
    },
    "positive",
  );
const publisher = createPublisher({ kafka, topic });
await publisher.connect();
const t0 = Date.now();
for (let i = 0; i < uploads; i += 1000) {
  await publisher.publish(Array.from({ length: Math.min(1000, uploads - i) }, notification));
}
const publishSeconds = (Date.now() - t0) / 1000;
await publisher.disconnect();

// One sample a second until every channel has every upload and the group committed them all.
interface Sample {
  t: number;
  lag: number;
  rssMb: number;
  slack: number;
  email: number;
  webhook: number;
  slackMessages: number;
  sesThrottled: number;
}
const samples: Sample[] = [];
const series = new Map<string, (number | undefined)[]>();
const wanted = metricNamesOf(ruleFile);
const allIn = () => CHANNELS.every((c) => seen[c].size >= uploads);
let timedOut = false;
let zeroLagSamples = 0;
for (let i = 0; ; i++) {
  if (quotaRaisedAfter !== undefined && quotaRaisedAt === undefined) {
    if (Date.now() - t0 >= quotaRaisedAfter * 1000) {
      ses.setDailyQuota(undefined);
      quotaRaisedAt = (Date.now() - t0) / 1000;
    }
  }
  readEmails();
  const [lagNow, texts] = await Promise.all([lag().catch(() => Number.NaN), scrape()]);
  for (const [p, text] of texts.entries()) {
    for (const [s, v] of parseMetrics(text, wanted)) {
      const key = podSeries(s, p);
      const values = series.get(key) ?? [];
      series.set(key, values);
      values[i] = v;
    }
  }
  samples.push({
    t: i,
    lag: lagNow,
    rssMb: rssMb(),
    slack: seen.slack.size,
    email: seen.email.size,
    webhook: seen.webhook.size,
    slackMessages,
    sesThrottled: ses.throttled(),
  });
  // Lag 0: every upload's outcome is final (delivered or dead-lettered).
  zeroLagSamples = lagNow === 0 ? zeroLagSamples + 1 : 0;
  if (allIn() ? lagNow === 0 : zeroLagSamples >= 5) break;
  if (Date.now() - t0 > timeoutSeconds * 1000) {
    timedOut = true;
    break;
  }
  await Bun.sleep(Math.max(0, t0 + (i + 1) * 1000 - Date.now()));
}
clearInterval(rssSampler);
for (const values of series.values()) values.length = samples.length;
const metricsText = (await scrape()).join("\n");
for (const p of processors) p.kill("SIGTERM");
const exit = Math.max(...(await Promise.all(processors.map((p) => p.exited))));

const dlqTopic = dlqTopicOf(topic);
const dlqMessages = (await admin.listTopics()).includes(dlqTopic)
  ? (await admin.fetchTopicOffsets(dlqTopic)).reduce((s, p) => s + Number(p.high), 0)
  : 0;
const dlqMetric = [...metricsText.matchAll(/^fanda_dlq_messages_total\{[^}]*\} (\S+)/gm)].reduce(
  (s, m) => s + Number(m[1]),
  0,
);
await admin.deleteTopics({ topics: [topic, dlqTopic] }).catch(() => {});
await admin.disconnect();
const db = await mysql.createConnection(mysqlServer);
const [rows] = await db.query(
  `SELECT channel, status, COUNT(*) AS n FROM \`${database}\`.fanda_deliveries GROUP BY channel, status ORDER BY channel, status`,
);
await db.query(`DROP DATABASE \`${database}\``);
await db.end();
await sink.stop(true);
await slack.stop();
const slackLimited = slack.rateLimited();
await ses.stop();

const alerts = promtool ? await firedAlerts(promtool, ruleFile, series, samples.length) : undefined;

const stamp = new Date().toISOString().slice(0, 10);
const quotaTitle =
  dailyQuota === undefined
    ? ""
    : ` with a daily quota of ${dailyQuota}${quotaRaisedAt === undefined ? "" : ` (lifted at ${quotaRaisedAt.toFixed(0)} s)`}`;
const title = `${uploads} uploads in one burst: Slack 1/s per channel (digests), SES ${sesRate}/s${quotaTitle}, webhook`;
if (values.csv) {
  const head =
    "seconds,lag,rss_mb,slack_delivered,email_delivered,webhook_delivered,slack_messages,ses_throttled";
  const body = samples.map((s) =>
    [
      s.t,
      s.lag,
      s.rssMb.toFixed(1),
      s.slack,
      s.email,
      s.webhook,
      s.slackMessages,
      s.sesThrottled,
    ].join(","),
  );
  await Bun.write(values.csv, `${[head, ...body].join("\n")}\n`);
}
if (values.plot) {
  const pts = (f: (s: Sample) => number) => samples.map((s) => [s.t, f(s)] as const);
  await Bun.write(
    values.plot,
    timeSeriesSvg(
      [
        { name: "consumer lag", color: "#cf222e", points: pts((s) => s.lag) },
        { name: "email delivered", color: "#0969da", points: pts((s) => s.email) },
        { name: "Slack delivered", color: "#1a7f37", points: pts((s) => s.slack) },
      ],
      title,
      "uploads",
    ),
  );
}

const secondsTo = (c: ChannelName) =>
  seen[c].size >= uploads ? ((lastAt[c] - t0) / 1000).toFixed(1) : "not all";
const maxLag = Math.max(...samples.map((s) => s.lag).filter(Number.isFinite));
const lagZeroAt =
  samples.at(-1)?.lag === 0 ? samples[samples.findLastIndex((s) => s.lag !== 0) + 1]?.t : undefined;
const logRows = (rows as { channel: string; status: string; n: number }[])
  .map((r) => `${r.channel} ${r.status} ${r.n}`)
  .join(", ");
const firedText = !alerts
  ? "promtool not found (scripts/lib.sh ensure_promtool): not evaluated"
  : alerts.fired.length === 0
    ? `none of ${alerts.alerts.length}`
    : alerts.fired
        .map((f) => `${f.alert} ${f.labels} firing from ${f.firstAt}s to ${f.lastAt}s`)
        .join("; ");
console.log(`
### Burst at provider limits: ${uploads} uploads, SES ${sesRate}/s (${stamp})

\`bun scripts/bench/burst.ts --uploads ${uploads} --ses-rate ${sesRate}${instances > 1 ? ` --instances ${instances}` : ""}${dailyQuota === undefined ? "" : ` --ses-daily-quota ${dailyQuota}`}${quotaRaisedAfter === undefined ? "" : ` --quota-raised-after ${quotaRaisedAfter}`}${values.csv ? ` --csv ${values.csv}` : ""}${values.plot ? ` --plot ${values.plot}` : ""}\`

Burst published in ${publishSeconds.toFixed(1)} s; ${instances === 1 ? "one processor" : `${instances} processors in one group`} (Redis, MySQL log), channels slack + email + webhook.${timedOut ? ` **Stopped at the ${timeoutSeconds} s timeout.**` : ""}

| measure | value |
|---|---|
| last notification, from the first publish: Slack / email / webhook | ${secondsTo("slack")} / ${secondsTo("email")} / ${secondsTo("webhook")} s |
| delivered (distinct uploads): Slack / email / webhook | ${seen.slack.size} / ${seen.email.size} / ${seen.webhook.size} of ${uploads} |
| Slack messages (digests) / answered 429 | ${slackMessages} / ${slackLimited} (${(seen.slack.size / Math.max(1, slackMessages)).toFixed(1)} uploads per message) |
| emails sent / refused by SES for the rate (429) | ${ses.sent.length} / ${ses.throttled()} |${dailyQuota === undefined ? "" : `\n| SES daily quota: emails / sends refused for it / lifted at | ${dailyQuota} / ${ses.quotaRefused()} / ${quotaRaisedAt === undefined ? "never" : `${quotaRaisedAt.toFixed(0)} s`} |`}
| consumer lag: peak / back to 0 at | ${maxLag} / ${lagZeroAt === undefined ? "not reached" : `${lagZeroAt} s`} |
| processor RSS peak${instances > 1 ? " (largest)" : ""} | ${peakRss.toFixed(0)} MB |
| dead-lettered (DLQ topic / fanda_dlq_messages_total) | ${dlqMessages} / ${dlqMetric} |
| delivery log rows | ${logRows} |
| alerts that fired (promtool over ${samples.length} 1 s scrapes, rules evaluated every 15 s) | ${firedText} |
| processor exit on SIGTERM | ${exit} |
`);
process.exit(!timedOut && exit === 0 && dlqMessages === 0 && dlqMetric === 0 ? 0 : 1);
