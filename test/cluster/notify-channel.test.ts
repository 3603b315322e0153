/**
 * The NOTIFY channel between instances, on its own: a burst larger than many payloads goes out complete and
 * in order, an instance drops its own envelopes, and batches under sustained traffic keep their spacing.
 * Runs only with TEST_DATABASE_URL.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createServer, type AddressInfo } from "node:net";
import postgres from "postgres";
import { MAX_PAYLOAD_BYTES, NotifyChannel } from "../../src/broker/postgres/notify-channel";
import { TEST_DATABASE_URL } from "../support/database";
import { eventually } from "../realtime/helpers";
import { useEndToEndTimeout } from "../support/timeout";

useEndToEndTimeout();

interface Item {
  n: number;
  text: string;
}

describe.skipIf(!TEST_DATABASE_URL)("NotifyChannel", () => {
  const channelName = `symbia_test_${Math.random().toString(36).slice(2, 10)}`;
  let pool: postgres.Sql;
  let sender: NotifyChannel<Item>;
  let receiver: NotifyChannel<Item>;
  const received: { items: Item[]; origin: string; at: number }[] = [];
  const heardBySender: Item[] = [];

  beforeAll(async () => {
    pool = postgres(TEST_DATABASE_URL!, { max: 2, onnotice: () => {} });
    const common = { url: TEST_DATABASE_URL!, channel: channelName, listener: pool };
    sender = new NotifyChannel<Item>({ ...common, origin: "sender", onItems: (items) => heardBySender.push(...items) });
    receiver = new NotifyChannel<Item>({
      ...common,
      origin: "receiver",
      onItems: (items, origin) => received.push({ items, origin, at: performance.now() }),
    });
    await sender.start();
    await receiver.start();
  });

  afterAll(async () => {
    await sender?.stop();
    await receiver?.stop();
    await pool?.end({ timeout: 5 });
  });

  test("a burst of many payloads arrives complete and in order; the sender does not hear itself", async () => {
    const text = "x".repeat(500);
    const count = 400; // about 200 KB: 26 payloads, sent as two statements
    for (let n = 1; n <= count; n++) sender.send({ n, text });
    await sender.drain();
    await eventually(() => received.flatMap((r) => r.items).length >= count, 5000, "every item received");
    const items = received.flatMap((r) => r.items);
    expect(items.map((i) => i.n)).toEqual(Array.from({ length: count }, (_, i) => i + 1));
    expect(received.every((r) => r.origin === "sender")).toBe(true);
    expect(received.length).toBeGreaterThanOrEqual(Math.ceil((count * 510) / MAX_PAYLOAD_BYTES));
    await Bun.sleep(100);
    expect(heardBySender).toEqual([]);
  });

  test("while PostgreSQL does not answer, one batch waits and the queue is bounded: the excess is dropped and counted", async () => {
    // A server that accepts connections and never answers: the sender's connection hangs.
    const hung = new Set<import("node:net").Socket>();
    const blackHole = createServer((socket) => hung.add(socket));
    await new Promise<void>((resolve) => blackHole.listen(0, "127.0.0.1", resolve));
    const port = (blackHole.address() as AddressInfo).port;
    const stuck = new NotifyChannel<Item>({
      url: `postgres://postgres@127.0.0.1:${port}/nowhere`,
      channel: channelName,
      origin: "stuck",
      listener: pool,
      onItems: () => {},
    });
    for (let n = 1; n <= 25_000; n++) stuck.send({ n, text: "" });
    expect(stuck.dropped).toBe(5_000);
    // The first 20,000 are now one batch in flight, hanging. What comes meanwhile waits behind it, bounded.
    await Bun.sleep(100);
    for (let n = 1; n <= 25_000; n++) stuck.send({ n, text: "" });
    expect(stuck.dropped).toBe(10_000);
    for (const socket of hung) socket.destroy();
    blackHole.close();
    await stuck.drain(); // every batch fails fast now that the connection is refused
    expect(stuck.dropped).toBe(50_000);
    await stuck.stop();
  });

  test("under sustained traffic, batches are at least the spacing apart", async () => {
    received.length = 0;
    const until = performance.now() + 300;
    for (let n = 1; performance.now() < until; n++) {
      sender.send({ n, text: "typing" });
      await Bun.sleep(1);
    }
    await sender.drain();
    await Bun.sleep(100);
    const times = received.map((r) => r.at);
    expect(times.length).toBeGreaterThan(3);
    // Spacing is 10 ms between sends; arrival times carry some jitter of their own.
    const gaps = times.slice(1).map((t, i) => t - times[i]);
    expect(gaps.filter((gap) => gap < 6).length).toBeLessThanOrEqual(1);
    expect(times.length).toBeLessThan(300 / 8);
  });
});
