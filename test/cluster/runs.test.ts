/**
 * A run's state lives in the database: a pause made through one instance refuses its owner's next send
 * through another at once, and either instance's sockets hear the transitions. Runs only on PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { usingPostgres } from "../support/database";
import { startTestServer, type TestServer } from "../support/server";
import { useEndToEndTimeout } from "../support/timeout";
import { groupConversation } from "../realtime/helpers";

useEndToEndTimeout();

let a: TestServer;
let b: TestServer;

describe.skipIf(!usingPostgres)("runs on two instances", () => {
  beforeAll(async () => {
    a = await startTestServer();
    b = await startTestServer();
  });
  afterAll(async () => {
    await a?.stop();
    await b?.stop();
  });

  test("a pause on A refuses the owner's next send on B; a resume on B lets it through on A", async () => {
    const owner = await a.principal();
    const agent = await a.principal({ type: "agent" });
    const conversationId = await groupConversation(a, owner, [agent]);
    const path = `/api/conversations/${conversationId}`;
    expect((await b.request("POST", `${path}/messages`, { as: agent, body: { content: "token", runId: "r" } })).status).toBe(201);
    expect((await a.request("POST", `${path}/control`, { as: agent, body: { event: "stream.pause", runId: "r" } })).status).toBe(201);
    const refused = await b.request("POST", `${path}/messages`, { as: agent, body: { content: "token", runId: "r" } });
    expect(refused.status).toBe(409);
    expect(refused.body.code).toBe("run_paused");
    expect((await b.request("POST", `${path}/control`, { as: agent, body: { event: "stream.resume", runId: "r" } })).status).toBe(201);
    expect((await a.request("POST", `${path}/messages`, { as: agent, body: { content: "token", runId: "r" } })).status).toBe(201);
    expect((await a.request("POST", `${path}/control`, { as: owner, body: { event: "stream.cancel", runId: "r" } })).status).toBe(201);
    expect((await b.request("POST", `${path}/messages`, { as: agent, body: { content: "token", runId: "r" } })).body.code).toBe("run_ended");
  });
});
