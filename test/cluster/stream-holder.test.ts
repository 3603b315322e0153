/**
 * A stream whose holder is killed (SIGKILL) while another instance lives: that instance notices the
 * holder is gone (its heartbeats stop) and ends the stream as interrupted with the content of the last
 * flush, long before the idle timeout. Appends reaching it meanwhile get 503 stream_unreachable, never a
 * hang. Runs only with TEST_DATABASE_URL.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { TEST_DATABASE_URL } from "../support/database";
import { createClusterDatabase, groupConversation, startInstance, type ClusterDatabase, type Instance } from "../support/cluster";
import { useEndToEndTimeout } from "../support/timeout";

useEndToEndTimeout();

let cluster: ClusterDatabase;
let a: Instance;
let b: Instance;

describe.skipIf(!TEST_DATABASE_URL)("a stream's holder killed", () => {
  beforeAll(async () => {
    cluster = await createClusterDatabase();
    // The default idle timeout (5 min): only the holder's absence can end the stream within the test.
    const env = { STREAM_FLUSH_MS: "100" };
    [a, b] = await Promise.all([startInstance("A", cluster.url, env), startInstance("B", cluster.url, env)]);
    await cluster.waitForRelays(2);
  }, 60_000);
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()].map((p) => p?.catch(() => {})));
    await cluster?.drop();
  });

  test("the other instance ends it as interrupted within seconds, with the flushed content", async () => {
    const [owner, writer] = await Promise.all([cluster.user(), cluster.user()]);
    const conversationId = await groupConversation(a, owner, [writer]);
    const path = `/api/conversations/${conversationId}/messages`;
    const created = await b.request("POST", path, { as: writer, body: { content: "", streaming: true } });
    expect(created.status).toBe(201);
    const mid = created.body.id;
    let expected = "";
    for (let i = 0; i < 10; i++) {
      expected += `${i} `;
      expect((await b.request("POST", `${path}/${mid}/append`, { as: writer, body: { delta: `${i} ` } })).status).toBe(200);
    }
    // Forwarded to the holder while it lives: reads on A see the content so far.
    expect((await a.request("GET", `${path}/${mid}`, { as: owner })).body.content).toBe(expected);
    const watcher = await a.joined(owner, conversationId);
    await Bun.sleep(400); // at least one flush

    b.kill("SIGKILL");
    const killedAt = performance.now();
    const refused = await a.request("POST", `${path}/${mid}/append`, { as: writer, body: { delta: "after" } });
    expect(refused.status).toBe(503);
    expect(refused.body.code).toBe("stream_unreachable");
    const ended = await watcher.next((f) => f.event === "message:updated" && f.data.id === mid && f.data.stream_state !== "streaming", 15_000);
    expect(performance.now() - killedAt).toBeLessThan(12_000);
    expect(ended.data).toMatchObject({ stream_state: "interrupted", content: expected });
    const read = await a.request("GET", `${path}/${mid}`, { as: owner });
    expect(read.body).toMatchObject({ stream_state: "interrupted", content: expected });
    const closed = await a.request("POST", `${path}/${mid}/append`, { as: writer, body: { delta: "after" } });
    expect(closed.status).toBe(409);
    expect(closed.body.code).toBe("stream_closed");
    watcher.close();
  }, 40_000);
});
