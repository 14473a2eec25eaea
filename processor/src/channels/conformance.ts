/**
 * What every channel must do, as one suite each channel runs against its provider's test
 * server: a delivery records the provider's id; a provider's retriable failure is a retriable
 * ChannelError and a final one a final ChannelError, both naming the channel; a provider that
 * never answers ends as a retriable failure within the channel's timeout, and so does one that
 * sends its headers and then stalls the body (the timeout covers the whole exchange); and a
 * shutdown (the send's signal aborting) ends a send that waits on such a provider, whether it
 * waits for the headers or for the body, and the channel closes. A provider that refuses every
 * message because of how the channel is set up (a revoked token, paused sending, a URL that
 * answers 401) is a configuration-class failure naming the setting to fix: through the
 * dispatcher, fifty sends are all deferred (none failed, so none dead-lettered), the channel's
 * breaker is open and its health names the setting; once fixed, they deliver.
 */
import { describe, expect, test } from "bun:test";
import type { Notification } from "../../../core/contract.ts";
import { createLogger } from "../../../core/log.ts";
import { aNotification } from "../../../test/support/notifications.ts";
import { createDispatcher } from "../dispatch.ts";
import { ChannelConfigError } from "../errors.ts";
import type { Channel } from "./channel.ts";
import { channelErrorOf } from "./testing.ts";

/** How the suite drives one channel and its test server. */
export interface ConformanceHarness {
  /** A channel talking to the test server, with this per-request timeout where it has one. */
  channel(options: { timeoutMs: number }): Promise<Channel>;
  /** The route target the sends use (e.g. a Slack channel). */
  target?: Record<string, unknown>;
  /** The provider's next answer is a failure worth retrying (5xx, throttling). */
  failRetriable?(): void;
  /** The provider's next answer is final (a 4xx, a rejected message). */
  failFinal?(): void;
  /** The provider leaves the next request unanswered. */
  stall?(): void;
  /** The provider answers the next request's headers (success) and then never ends the body. */
  stallBody?(): void;
  /**
   * The provider refuses every request from now on the way a misconfiguration does (a revoked
   * token, sending paused, a 401); returns the setting the channel must name.
   */
  misconfigure?(): string;
  /** The operator fixes what `misconfigure` broke. */
  fix?(): void;
  /** The channel has a per-request timeout, so a stalled provider ends as retriable. */
  timesOut?: boolean;
  /** The provider's id is recorded in the receipt. */
  providerId: boolean;
  /** Stops the test server. */
  stop(): Promise<void>;
}

const never = new AbortController().signal;

const errorOf = channelErrorOf;

/** Runs the suite for the channel `name`. */
export function channelConformance(name: string, harness: () => Promise<ConformanceHarness>) {
  describe(`${name} channel conformance`, () => {
    const run = async (
      body: (h: ConformanceHarness, c: Channel, n: Notification) => Promise<void>,
      timeoutMs = 60_000,
    ) => {
      const h = await harness();
      const c = await h.channel({ timeoutMs });
      try {
        await body(h, c, aNotification());
      } finally {
        await c.close();
        await h.stop();
      }
    };

    test("a delivery records the provider's id", () =>
      run(async (h, c, n) => {
        const receipt = await c.send(n, { signal: never, target: h.target ?? {} });
        if (h.providerId) expect(receipt.providerId ?? "").not.toBe("");
        else expect(receipt).toEqual({});
      }));

    test("a retriable provider failure is a retriable ChannelError naming the channel", () =>
      run(async (h, c, n) => {
        if (!h.failRetriable) return;
        h.failRetriable();
        const err = await errorOf(c.send(n, { signal: never, target: h.target ?? {} }));
        expect({ channel: err.channel, retriable: err.retriable }).toEqual({
          channel: name,
          retriable: true,
        });
      }));

    test("a final provider failure is a final ChannelError naming the channel", () =>
      run(async (h, c, n) => {
        if (!h.failFinal) return;
        h.failFinal();
        const err = await errorOf(c.send(n, { signal: never, target: h.target ?? {} }));
        expect({ channel: err.channel, retriable: err.retriable }).toEqual({
          channel: name,
          retriable: false,
        });
      }));

    test(
      "a provider that never answers is a retriable failure once the channel's timeout passes",
      () =>
        run(async (h, c, n) => {
          if (!h.stall || !h.timesOut) return;
          h.stall();
          const err = await errorOf(c.send(n, { signal: never, target: h.target ?? {} }));
          expect(err.retriable).toBe(true);
        }, 300),
      30_000,
    );

    test(
      "a provider that stalls the body after its headers is a retriable failure once the timeout passes",
      () =>
        run(async (h, c, n) => {
          if (!h.stallBody || !h.timesOut) return;
          h.stallBody();
          const err = await errorOf(c.send(n, { signal: never, target: h.target ?? {} }));
          expect(err.retriable).toBe(true);
        }, 300),
      30_000,
    );

    test(
      "a shutdown ends a send that waits on a stalled response body",
      () =>
        run(async (h, c, n) => {
          if (!h.stallBody) return;
          h.stallBody();
          const shutdown = new AbortController();
          const sending = c.send(n, { signal: shutdown.signal, target: h.target ?? {} });
          setTimeout(() => shutdown.abort(new Error("shutdown")), 100);
          await expect(sending).rejects.toBeDefined();
        }),
      30_000,
    );

    test("a configuration-class failure is a ChannelConfigError naming the setting", () =>
      run(async (h, c, n) => {
        if (!h.misconfigure) return;
        const setting = h.misconfigure();
        const err = await errorOf(c.send(n, { signal: never, target: h.target ?? {} }));
        expect(err).toBeInstanceOf(ChannelConfigError);
        expect({ channel: err.channel, setting: (err as ChannelConfigError).setting }).toEqual({
          channel: name,
          setting,
        });
      }));

    test(
      "a misconfigured channel is down, not failing messages: all deferred, breaker open, the setting named; fixed, they deliver",
      () =>
        run(async (h, c) => {
          if (!h.misconfigure || !h.fix) return;
          const setting = h.misconfigure();
          const flagged: [string, string, boolean][] = [];
          const dispatch = createDispatcher({
            channels: [c],
            logger: createLogger({ sink: () => {} }),
            sleep: async () => {},
            onMisconfigured: (channel, wrong, on) => flagged.push([channel, wrong, on]),
          });
          const route = { channels: [name], targets: { [name]: h.target ?? {} } };
          const notifications = Array.from({ length: 50 }, (_, i) =>
            aNotification({ key: `reports/positive/r-${i}.pdf` }),
          );
          const down = await Promise.all(notifications.map((m) => dispatch(m, route, never)));
          expect(down.flat().map((o) => o.status)).toEqual(Array(50).fill("deferred"));
          const health = dispatch.health()[name];
          expect(health?.breakerOpen).toBe(true);
          expect(health?.misconfigured?.setting).toBe(setting);
          expect(flagged[0]).toEqual([name, setting, true]);
          h.fix?.();
          const up = await Promise.all(notifications.map((m) => dispatch(m, route, never)));
          expect(up.flat().map((o) => o.status)).toEqual(Array(50).fill("delivered"));
          expect(dispatch.health()[name]).toMatchObject({ breakerOpen: false });
          expect(dispatch.health()[name]?.misconfigured).toBeUndefined();
          expect(flagged.at(-1)).toEqual([name, setting, false]);
        }),
      30_000,
    );

    // The channel's own timeout is a minute here: only the abort can end the send in time.
    test(
      "a shutdown ends a send that waits on a silent provider, and the channel closes",
      () =>
        run(async (h, c, n) => {
          if (!h.stall) return;
          h.stall();
          const shutdown = new AbortController();
          const sending = c.send(n, { signal: shutdown.signal, target: h.target ?? {} });
          setTimeout(() => shutdown.abort(new Error("shutdown")), 50);
          await expect(sending).rejects.toBeDefined();
        }),
      30_000,
    );
  });
}
