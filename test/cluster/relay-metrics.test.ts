/**
 * The relay's metrics: items queued, sent in batches, received, and dropped by reason, per channel; and
 * the peers an instance hears. The channel part runs only with TEST_DATABASE_URL.
 */
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import postgres from "postgres";
import { NotifyChannel } from "../../src/broker/postgres/notify-channel";
import { PeerDirectory } from "../../src/broker/postgres/peers";
import { registry } from "../../src/metrics/registry";
import { TEST_DATABASE_URL } from "../support/database";
import { parseExposition } from "../support/prometheus";
import { eventually } from "../realtime/helpers";

setDefaultTimeout(60_000);

const read = async () => parseExposition(await registry.metrics());

test("peers heard and forgotten move the peers gauge", async () => {
  const before = (await read()).value("symbia_relay_peers")!;
  const directory = new PeerDirectory();
  directory.heard("a");
  directory.heard("b");
  directory.heard("a");
  expect((await read()).value("symbia_relay_peers")).toBe(before + 2);
  directory.forget("a");
  directory.forget("a");
  expect((await read()).value("symbia_relay_peers")).toBe(before + 1);
  directory.clear();
  expect((await read()).value("symbia_relay_peers")).toBe(before);
});

describe.skipIf(!TEST_DATABASE_URL)("relay metrics", () => {
  const channel = `symbia_test_${Math.random().toString(36).slice(2, 10)}`;
  let pool: postgres.Sql;
  let sender: NotifyChannel<{ n: number }>;
  let receiver: NotifyChannel<{ n: number }>;
  let received = 0;

  beforeAll(async () => {
    pool = postgres(TEST_DATABASE_URL!, { max: 2, onnotice: () => {} });
    sender = new NotifyChannel({ url: TEST_DATABASE_URL!, channel, origin: "sender", listener: pool });
    receiver = new NotifyChannel({ url: TEST_DATABASE_URL!, channel, origin: "receiver", listener: pool, onItems: (items) => (received += items.length) });
    await sender.start();
    await receiver.start();
  });

  afterAll(async () => {
    await sender?.stop();
    await receiver?.stop();
    await pool?.end({ timeout: 5 });
  });

  test("what is sent and received is counted per channel; the queue empties", async () => {
    const count = 50;
    for (let n = 0; n < count; n++) sender.send({ n });
    expect((await read()).value("symbia_relay_queued_items", { channel })).toBe(count);
    await sender.drain();
    await eventually(() => received === count, 5000, "every item received");
    const metrics = await read();
    expect(metrics.value("symbia_relay_queued_items", { channel })).toBe(0);
    expect(metrics.value("symbia_relay_items_sent_total", { channel })).toBe(count);
    expect(metrics.value("symbia_relay_items_received_total", { channel })).toBe(count);
    expect(metrics.value("symbia_relay_batches_total", { channel })).toBeGreaterThanOrEqual(1);
    expect(metrics.sum("symbia_relay_items_dropped_total", { channel })).toBe(0);
  });

  test("items a database that refuses connections never took are dropped as send_failed", async () => {
    const unreachable = `symbia_test_${Math.random().toString(36).slice(2, 10)}`;
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    const lost = new NotifyChannel<{ n: number }>({ url: "postgres://postgres@127.0.0.1:1/nowhere", channel: unreachable, origin: "lost" });
    for (let n = 0; n < 3; n++) lost.send({ n });
    await lost.drain();
    const metrics = await read();
    expect(metrics.value("symbia_relay_items_dropped_total", { channel: unreachable, reason: "send_failed" })).toBe(3);
    expect(metrics.value("symbia_relay_queued_items", { channel: unreachable })).toBe(0);
    await lost.stop().catch(() => {});
  });
});
