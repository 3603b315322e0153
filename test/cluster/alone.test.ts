/**
 * An instance that hears no other instance relays no frames (a single instance on PostgreSQL does not pay
 * for NOTIFY), and starts relaying as soon as another one appears, without its newcomer missing anything.
 * The test listens on the channel itself, as a bystander the instances do not know of, to see what goes
 * over it. Runs only with TEST_DATABASE_URL.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import postgres from "postgres";
import { EVENTS_CHANNEL, EXPIRY_MS, HEARTBEAT_MS } from "../../src/broker/postgres/postgres-broker";
import { TEST_DATABASE_URL } from "../support/database";
import {
  createClusterDatabase,
  groupConversation,
  range,
  restSend,
  sequencesOf,
  startInstance,
  startPostgresProxy,
  type ClusterDatabase,
  type Instance,
  type PostgresProxy,
} from "../support/cluster";
import { eventually, type Frame } from "../realtime/helpers";
import { useEndToEndTimeout } from "../support/timeout";

// End-to-end tests start servers and processes, and wait out the expiry of silent instances.
useEndToEndTimeout();

interface Heard {
  at: number;
  origin: string;
  kind: string;
  item: any;
}

let cluster: ClusterDatabase;
let listener: postgres.Sql;
const heard: Heard[] = [];
let a: Instance;
/** When A started listening (its `sync`): it relays everything for the expiry after that. */
let aListeningAt: number;

const presenceOf = (userId: string, status: string) => (f: Frame) =>
  f.event === "presence:changed" && f.data.userId === userId && f.data.status === status;

/** What instance `origin` sent since `since` (performance.now()), by item kind. */
function sentBy(origin: string | undefined, kind: string, since = 0): Heard[] {
  return heard.filter((h) => h.origin === origin && h.kind === kind && h.at >= since);
}

/** The origin of the instance that sends heartbeats and was not known before. */
async function originOfNewInstance(known: Set<string>): Promise<string> {
  let origin: string | undefined;
  await eventually(
    () => (origin = heard.find((h) => !known.has(h.origin))?.origin) !== undefined,
    10_000,
    `a new instance on the channel (heard so far: ${JSON.stringify([...new Set(heard.map((h) => `${h.origin.slice(0, 8)} ${h.kind}`))])})`,
  );
  return origin!;
}

describe.skipIf(!TEST_DATABASE_URL)("an instance alone on PostgreSQL", () => {
  let originA: string;

  beforeAll(async () => {
    cluster = await createClusterDatabase();
    listener = postgres(cluster.url, { max: 1, onnotice: () => {} });
    await listener.listen(EVENTS_CHANNEL, (payload) => {
      const envelope = JSON.parse(payload) as { o: string; i: any[] };
      for (const item of envelope.i) heard.push({ at: performance.now(), origin: envelope.o, kind: item.k, item });
    });
    a = await startInstance("A", cluster.url);
    originA = await originOfNewInstance(new Set());
    await eventually(() => sentBy(originA, "sync").length > 0, 10_000, "A's sync");
    aListeningAt = sentBy(originA, "sync")[0].at;
  }, 60_000);

  afterAll(async () => {
    await a?.stop();
    await listener?.end({ timeout: 5 });
    await cluster?.drop();
  }, 30_000);

  test("leaves messages out once it has heard no other instance for the expiry; presence and heartbeats still go", async () => {
    const [alice, bob] = await Promise.all([cluster.user(), cluster.user()]);
    const conversationId = await groupConversation(a, alice, [bob]);
    // Until the expiry has passed since its start, it relays (others may exist that it has not heard yet).
    await Bun.sleep(Math.max(0, aListeningAt + EXPIRY_MS + 500 - performance.now()));
    const since = performance.now();
    const bobOnA = await a.joined(bob, conversationId);
    const first = await restSend(a, alice, conversationId, "alone #1");
    for (let n = 2; n <= 3; n++) await restSend(a, alice, conversationId, `alone #${n}`);
    await bobOnA.next((f) => f.event === "message:new" && f.data.sequence === 3);
    await Bun.sleep(2500);
    expect(sentBy(originA, "f", since)).toEqual([]);
    expect(sentBy(originA, "p", since).length).toBeGreaterThan(0);
    expect(sentBy(originA, "hb", since).length).toBeGreaterThan(0);
    // Rare frames without a sequence (here an edit) go out even alone: a newcomer could not read them back.
    expect((await a.request("PATCH", `/api/conversations/${conversationId}/messages/${first.id}`, { as: alice, body: { content: "edited" } })).status).toBe(200);
    await eventually(() => sentBy(originA, "f", since).length === 1, 3000, "the edit relayed");
    expect(sentBy(originA, "f", since)[0].item.s).toBeUndefined();
    bobOnA.close();
  });

  test("a second instance hears it at once, presence included, and frames flow both ways", async () => {
    const [alice, bob] = await Promise.all([cluster.user(), cluster.user()]);
    const conversationId = await groupConversation(a, alice, [bob]);
    const aliceOnA = await a.joined(alice, conversationId);
    // Alone, A leaves this message out: its greeting of B must say so.
    await Bun.sleep(Math.max(0, aListeningAt + EXPIRY_MS + 500 - performance.now()));
    await restSend(a, alice, conversationId, "while A is alone");
    const b = await startInstance("B", cluster.url);
    try {
      const originB = await originOfNewInstance(new Set([originA]));
      // A left a message out: it greets B with the flag that makes B catch up from the database.
      await eventually(() => sentBy(originA, "hi").some((h) => h.item.w === 1), 5000, "A greets B");
      // Alice came online on A while A was alone: B learns it when A greets it (in the join's answer, or
      // as a change if the greeting comes later).
      const bobOnB = await b.socket(bob);
      const ack = await bobOnB.request("join:conversation", { conversationId });
      if (!(ack.data.presence as { userId: string }[]).some((p) => p.userId === alice.id)) {
        await bobOnB.next(presenceOf(alice.id, "online"), 5000);
      }
      const fromA = await restSend(a, alice, conversationId, "from A to B");
      expect((await bobOnB.next("message:new", 5000)).data).toEqual(fromA);
      const fromB = await restSend(b, bob, conversationId, "from B to A");
      expect((await aliceOnA.next((f) => f.event === "message:new" && f.data.sequence === fromB.sequence, 5000)).data).toEqual(fromB);
      await eventually(() => sentBy(originB, "f").length > 0, 5000, "B relays its frames");
      for (const socket of [aliceOnA, bobOnB]) socket.close();
    } finally {
      await b.stop();
    }
  });

  test("an instance away for longer than the expiry is forgotten, the other goes alone, and the returning one misses nothing", async () => {
    const proxy: PostgresProxy = await startPostgresProxy(cluster.url);
    const known = new Set(heard.map((h) => h.origin));
    const b = await startInstance("B", proxy.url);
    try {
      const [alice, bob] = await Promise.all([cluster.user(), cluster.user()]);
      const conversationId = await groupConversation(a, alice, [bob]);
      const originB = await originOfNewInstance(known);
      const bobOnB = await b.joined(bob, conversationId);
      await restSend(a, alice, conversationId, "before the outage");
      await bobOnB.next((f) => f.event === "message:new" && f.data.sequence === 1, 5000);

      // B hears nothing and says nothing for longer than the expiry: A forgets it and relays no more.
      // A checks for silent peers every heartbeat, so it forgets B between EXPIRY_MS and EXPIRY_MS plus a
      // heartbeat after B's last item.
      const outage = EXPIRY_MS + HEARTBEAT_MS + 2500;
      proxy.interrupt(outage);
      const outageEnds = performance.now() + outage;
      await Bun.sleep(EXPIRY_MS + HEARTBEAT_MS + 500);
      const aloneSince = performance.now();
      for (let n = 2; n <= 4; n++) await restSend(a, alice, conversationId, `while B is away #${n}`);
      expect(performance.now()).toBeLessThan(outageEnds);
      expect(sentBy(originA, "f", aloneSince)).toEqual([]);

      // B comes back: what it missed comes from the database, in order, and then live frames again.
      await bobOnB.next((f) => f.event === "message:new" && f.data.sequence === 4, 15_000).catch((error) => {
        throw new Error(`${error.message}\nB's log:\n${b.output()}`);
      });
      await eventually(() => sentBy(originB, "hb", outageEnds).length > 0, 10_000, "B heard again");
      await restSend(a, alice, conversationId, "after the outage");
      await bobOnB.next((f) => f.event === "message:new" && f.data.sequence === 5, 5000);
      expect(sequencesOf(bobOnB)).toEqual(range(1, 5));
      bobOnB.close();
    } finally {
      await b.stop();
      await proxy.close();
    }
  });
});
