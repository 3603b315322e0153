/**
 * More than one instance: three server processes on one PostgreSQL (a database of their own), clients
 * connected to different instances of the same conversation. What one instance's clients do reaches the
 * others' through LISTEN/NOTIFY (src/broker/postgres/): messages in sequence order, removals, logouts, presence,
 * and messages too large for a notification. Runs only with TEST_DATABASE_URL (the embedded database
 * serves a single process).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { TEST_DATABASE_URL } from "../support/database";
import {
  createClusterDatabase,
  groupConversation,
  range,
  restSend,
  sequencesOf,
  startInstance,
  type ClusterDatabase,
  type Instance,
} from "../support/cluster";
import { eventually, type Frame, type RawSocket } from "../realtime/helpers";
import { useEndToEndTimeout } from "../support/timeout";

useEndToEndTimeout();

let cluster: ClusterDatabase;
let a: Instance;
let b: Instance;
let c: Instance;

const presenceOf = (userId: string, status: string) => (f: Frame) =>
  f.event === "presence:changed" && f.data.userId === userId && f.data.status === status;

/** Text of exactly `bytes` bytes, not one repeated character (so that nothing compresses it by accident). */
function bulkyText(bytes: number, seed: string): string {
  let text = "";
  for (let i = 0; text.length < bytes; i++) text += `${seed} line ${i}: the quick brown fox jumps over the lazy dog. `;
  return text.slice(0, bytes);
}

describe.skipIf(!TEST_DATABASE_URL)("more than one instance", () => {
  beforeAll(async () => {
    cluster = await createClusterDatabase();
    [a, b, c] = await Promise.all([startInstance("A", cluster.url), startInstance("B", cluster.url), startInstance("C", cluster.url)]);
    await cluster.waitForRelays(3);
  }, 60_000);

  afterAll(async () => {
    await Promise.all([a, b, c].map((instance) => instance?.stop()));
    await cluster?.drop();
  }, 30_000);

  test("a message sent over REST on A arrives on a socket on B, as the API answered it", async () => {
    const [alice, bob] = await Promise.all([cluster.user(), cluster.user()]);
    const conversationId = await groupConversation(a, alice, [bob]);
    const bobOnB = await b.joined(bob, conversationId);
    const sent = await restSend(a, alice, conversationId, "hello from A");
    expect((await bobOnB.next("message:new")).data).toEqual(sent);
    await bobOnB.expectNone("message:new", 200);
    expect(bobOnB.count("message:new")).toBe(1);
    bobOnB.close();
  });

  test("WebSocket sends on A, B and C interleaved into one conversation arrive as exactly 1..N, in order, everywhere", async () => {
    const people = await Promise.all([cluster.user(), cluster.user(), cluster.user(), cluster.user()]);
    const [alice, bob, carol, dave] = people;
    const conversationId = await groupConversation(a, alice, [bob, carol, dave]);
    const senders = [await a.joined(alice, conversationId), await b.joined(bob, conversationId), await c.joined(carol, conversationId)];
    // Dave only listens, once on every instance.
    const listeners = [await a.joined(dave, conversationId), await b.joined(dave, conversationId), await c.joined(dave, conversationId)];
    const receivers: [string, RawSocket][] = [
      ["alice on A", senders[0]],
      ["bob on B", senders[1]],
      ["carol on C", senders[2]],
      ["dave on A", listeners[0]],
      ["dave on B", listeners[1]],
      ["dave on C", listeners[2]],
    ];

    const perSender = 40;
    const total = perSender * senders.length;
    const acks: Promise<Frame>[] = [];
    // Each socket's frames are handled in order, the three instances at the same time: their sends interleave.
    for (let n = 0; n < perSender; n++) {
      senders.forEach((socket, i) => acks.push(socket.request("message:send", { conversationId, content: `sender ${i} message ${n}` }, 15_000)));
    }
    const answered = await Promise.all(acks);
    expect(answered.every((ack) => ack.ok)).toBe(true);
    expect(answered.map((ack) => ack.data.sequence as number).sort((x, y) => x - y)).toEqual(range(1, total));

    for (const [who, socket] of receivers) {
      await eventually(() => socket.count("message:new") >= total, 10_000, `${who} receiving ${total} messages`);
    }
    await Bun.sleep(200);
    for (const [who, socket] of receivers) {
      expect({ who, sequences: sequencesOf(socket) }).toEqual({ who, sequences: range(1, total) });
    }
    for (const [, socket] of receivers) socket.close();
  });

  test("a participant removed on A is unsubscribed on A and on B, and receives nothing more", async () => {
    const [owner, bob, carol] = await Promise.all([cluster.user(), cluster.user(), cluster.user()]);
    const conversationId = await groupConversation(a, owner, [bob, carol]);
    const bobOnA = await a.joined(bob, conversationId);
    const bobOnB = await b.joined(bob, conversationId);
    const carolOnA = await a.joined(carol, conversationId);
    const carolOnB = await b.joined(carol, conversationId);

    await restSend(b, owner, conversationId, "before the removal");
    for (const socket of [bobOnA, bobOnB]) expect((await socket.next("message:new")).data.sequence).toBe(1);

    const removed = await a.request("DELETE", `/api/conversations/${conversationId}/participants/${bob.id}`, { as: owner });
    expect(removed.status).toBe(204);
    for (const socket of [bobOnA, bobOnB]) {
      expect((await socket.next((f) => f.event === "participant:left" && f.data.userId === bob.id)).data.conversationId).toBe(conversationId);
    }

    // Messages on both instances after the removal: Carol gets them, Bob on neither instance.
    await restSend(a, owner, conversationId, "after the removal, on A");
    await restSend(b, owner, conversationId, "after the removal, on B");
    for (const socket of [carolOnA, carolOnB]) {
      await eventually(() => socket.count("message:new") >= 3, 5000, "carol receiving the messages after the removal");
      expect(sequencesOf(socket)).toEqual([1, 2, 3]);
    }
    await Promise.all([bobOnA.expectNone("message:new", 500), bobOnB.expectNone("message:new", 0)]);
    expect(sequencesOf(bobOnA)).toEqual([1]);
    expect(sequencesOf(bobOnB)).toEqual([1]);

    // Neither instance lets him back in or write.
    const send = await bobOnB.request("message:send", { conversationId, content: "still here?" });
    expect(send.error?.code).toBe("not_participant");
    const rejoin = await bobOnA.request("join:conversation", { conversationId });
    expect(rejoin.error?.code).toBe("not_participant");
    for (const socket of [bobOnA, bobOnB, carolOnA, carolOnB]) socket.close();
  });

  test("logout on A rejects the token on B within a second: REST 401 and the socket closed with 4401", async () => {
    const [user, other] = await Promise.all([cluster.user(), cluster.user()]);
    const conversationId = await groupConversation(a, other, [user]);
    const userOnB = await b.joined(user, conversationId);
    // B has the session in its credential cache.
    expect((await b.request("GET", "/api/auth/me", { as: user })).status).toBe(200);

    let closedAt = Infinity;
    const closed = userOnB.closed.then((info) => ((closedAt = performance.now()), info));
    expect((await a.request("POST", "/api/auth/logout", { as: user })).status).toBe(200);
    const loggedOut = performance.now();
    let rest = await b.request("GET", "/api/auth/me", { as: user });
    while (rest.status === 200 && performance.now() - loggedOut < 1000) {
      await Bun.sleep(20);
      rest = await b.request("GET", "/api/auth/me", { as: user });
    }
    expect(rest.status).toBe(401);
    expect(performance.now() - loggedOut).toBeLessThan(1000);
    expect((await Promise.race([closed, Bun.sleep(2000).then(() => undefined)]))?.code).toBe(4401);
    expect(closedAt - loggedOut).toBeLessThan(1000);

    // A new socket on B with that token is refused before the upgrade.
    const refused = await fetch(`${b.url}/api/ws`, { headers: { ...user.headers, upgrade: "websocket", connection: "upgrade" } });
    expect(refused.status).toBe(401);
  });

  test("presence across instances: online on A is seen on B; offline only when the last tab on any instance closes", async () => {
    const [bob, watcher, sender] = await Promise.all([cluster.user(), cluster.user(), cluster.user()]);
    const conversationId = await groupConversation(a, sender, [bob, watcher]);
    const watcherOnB = await b.joined(watcher, conversationId);
    const watcherOnA = await a.joined(watcher, conversationId);

    const tabOnA = await a.joined(bob, conversationId);
    await watcherOnB.next(presenceOf(bob.id, "online"), 5000);
    await watcherOnA.next(presenceOf(bob.id, "online"), 5000);

    const tabOnB = await b.joined(bob, conversationId);
    // B's announcement of the second tab reaches A before B's next frame does (one instance's items keep
    // their order): a message sent on B and received on A is the barrier.
    await restSend(b, sender, conversationId, "barrier 1");
    await watcherOnA.next("message:new", 5000);

    tabOnA.close();
    await tabOnA.closed;
    // The tab on B keeps Bob online: no offline, on either instance, for a heartbeat and more.
    await restSend(a, sender, conversationId, "barrier 2");
    await watcherOnB.next((f) => f.event === "message:new" && f.data.sequence === 2, 5000);
    await Promise.all([watcherOnA.expectNone(presenceOf(bob.id, "offline"), 2500), watcherOnB.expectNone(presenceOf(bob.id, "offline"), 0)]);

    tabOnB.close();
    await watcherOnA.next(presenceOf(bob.id, "offline"), 5000);
    await watcherOnB.next(presenceOf(bob.id, "offline"), 5000);
    await Bun.sleep(300);
    for (const socket of [watcherOnA, watcherOnB]) {
      expect(socket.count(presenceOf(bob.id, "online"))).toBe(1);
      expect(socket.count(presenceOf(bob.id, "offline"))).toBe(1);
    }

    // A client joining on A now hears nobody but who is there.
    const late = await a.socket(sender);
    const ack = await late.request("join:conversation", { conversationId });
    expect((ack.data.presence as { userId: string }[]).map((p) => p.userId).sort()).toEqual([sender.id, watcher.id].sort());
    for (const socket of [watcherOnA, watcherOnB, late]) socket.close();
  });

  test("a 60 KB message and a large edit cross instances in both directions", async () => {
    const [alice, bob] = await Promise.all([cluster.user(), cluster.user()]);
    const conversationId = await groupConversation(a, alice, [bob]);
    const aliceOnA = await a.joined(alice, conversationId);
    const bobOnB = await b.joined(bob, conversationId);
    const bobOnC = await c.joined(bob, conversationId);

    const big = bulkyText(60_000, "big");
    const sent = await restSend(a, alice, conversationId, big);
    for (const socket of [bobOnB, bobOnC]) {
      const frame = await socket.next("message:new", 5000);
      expect(frame.data).toEqual(sent);
      expect(Buffer.byteLength(frame.data.content)).toBe(60_000);
    }

    // A large edit over REST on B, and a large message over the socket on B, seen on A.
    const edited = await b.request("PATCH", `/api/conversations/${conversationId}/messages/${sent.id}`, {
      as: alice,
      body: { content: bulkyText(61_000, "edited") },
    });
    expect(edited.status).toBe(200);
    expect((await aliceOnA.next("message:updated", 5000)).data).toEqual(edited.body);
    const fromB = await bobOnB.request("message:send", { conversationId, content: bulkyText(60_000, "from B") });
    expect(fromB.ok).toBe(true);
    expect((await aliceOnA.next((f) => f.event === "message:new" && f.data.sequence === 2, 5000)).data).toEqual(fromB.data);

    // And a large edit over the socket on A, seen on B and C.
    const wsEdit = await aliceOnA.request("message:edit", { messageId: sent.id, content: bulkyText(59_000, "again") });
    expect(wsEdit.ok).toBe(true);
    for (const socket of [bobOnB, bobOnC]) {
      expect((await socket.next((f) => f.event === "message:updated" && f.data.version === wsEdit.data.version, 5000)).data).toEqual(wsEdit.data);
    }
    for (const socket of [aliceOnA, bobOnB, bobOnC]) socket.close();
  });
  test("with CLUSTER_FANOUT=off an instance relays nothing and hears nothing", async () => {
    const solo = await startInstance("D", cluster.url, { CLUSTER_FANOUT: "off" });
    try {
      const [alice, bob] = await Promise.all([cluster.user(), cluster.user()]);
      const conversationId = await groupConversation(a, alice, [bob]);
      const bobOnB = await b.joined(bob, conversationId);
      const bobOnSolo = await solo.joined(bob, conversationId);
      await restSend(solo, alice, conversationId, "on the solo instance");
      expect((await bobOnSolo.next("message:new")).data.sequence).toBe(1);
      await bobOnB.expectNone("message:new", 500);
      await restSend(a, alice, conversationId, "on A");
      await bobOnB.next((f) => f.event === "message:new" && f.data.sequence === 2);
      await bobOnSolo.expectNone("message:new", 300);
      // B never heard of 1 from the solo instance, only of 2 from A: it read 1 from the database to fill the gap.
      expect(sequencesOf(bobOnB)).toEqual([1, 2]);
      for (const socket of [bobOnB, bobOnSolo]) socket.close();
    } finally {
      await solo.stop();
    }
  });
});
