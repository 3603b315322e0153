/**
 * Principal notifications across instances: a socket on B, connected before the conversation exists,
 * hears that it was added (and removed) by writes on A, also when the conversation is too large to travel
 * in a notification. Runs only with TEST_DATABASE_URL.
 */
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { TEST_DATABASE_URL } from "../support/database";
import { createClusterDatabase, groupConversation, startInstance, type ClusterDatabase, type Instance } from "../support/cluster";

setDefaultTimeout(60_000);

let cluster: ClusterDatabase;
let a: Instance;
let b: Instance;

describe.skipIf(!TEST_DATABASE_URL)("principal notifications on more than one instance", () => {
  beforeAll(async () => {
    cluster = await createClusterDatabase();
    [a, b] = await Promise.all([startInstance("A", cluster.url), startInstance("B", cluster.url)]);
    await cluster.waitForRelays(2);
  }, 60_000);

  afterAll(async () => {
    await Promise.all([a, b].map((instance) => instance?.stop()));
    await cluster?.drop();
  }, 30_000);

  test("created, added and removed on A, told on B", async () => {
    const [alice, bob, carol] = await Promise.all([cluster.user(), cluster.user(), cluster.user()]);
    const [bobOnB, carolOnB] = await Promise.all([b.socket(bob), b.socket(carol)]);
    const conversationId = await groupConversation(a, alice, [bob]);
    expect((await bobOnB.next("conversation:added")).data).toMatchObject({ conversation: { id: conversationId }, role: "member" });

    expect((await a.request("POST", `/api/conversations/${conversationId}/participants`, { as: alice, body: { userId: carol.id } })).status).toBe(201);
    expect((await carolOnB.next("conversation:added")).data).toMatchObject({ conversation: { id: conversationId }, role: "member" });

    expect((await a.request("DELETE", `/api/conversations/${conversationId}/participants/${bob.id}`, { as: alice })).status).toBe(204);
    expect((await bobOnB.next("conversation:removed")).data).toEqual({ conversationId });
    await carolOnB.expectNone("conversation:removed", 200);
    bobOnB.close();
    carolOnB.close();
  });

  test("a conversation too large for a notification is read back by the receiving instance", async () => {
    const [alice, bob] = await Promise.all([cluster.user(), cluster.user()]);
    const bobOnB = await b.socket(bob);
    const metadata = { notes: "x".repeat(12_000) };
    const created = await a.request("POST", "/api/conversations", {
      as: alice,
      body: { type: "group", name: "bulky", metadata, participants: [{ userId: bob.id }] },
    });
    expect(created.status).toBe(201);
    const added = await bobOnB.next("conversation:added", 5000);
    expect(added.data.conversation).toMatchObject({ id: created.body.id, metadata });
    expect(added.data.role).toBe("member");
    bobOnB.close();
  });
});
