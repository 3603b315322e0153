/**
 * Streaming messages across two instances: deltas of a stream held by A reach B's watchers live; a late
 * joiner on B gets the content of the last flush and the text becomes whole by the stream's end; a cancel
 * made on B ends the stream A holds within a flush interval; appends must reach the holder. PostgreSQL only.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { StreamText } from "../../src/client";
import { TEST_DATABASE_URL, usingPostgres } from "../support/database";
import { startTestServer, type TestServer } from "../support/server";
import { useEndToEndTimeout } from "../support/timeout";
import { eventually, groupConversation, joinedSocket, sdkClient } from "../realtime/helpers";

useEndToEndTimeout();

let a: TestServer;
let b: TestServer;

describe.skipIf(!usingPostgres)("streaming on two instances", () => {
  beforeAll(async () => {
    // DATABASE_URL: the instances relay frames to each other through PostgreSQL (LISTEN/NOTIFY).
    const env = { STREAM_FLUSH_MS: "100", DATABASE_URL: TEST_DATABASE_URL ?? "" };
    a = await startTestServer(env);
    b = await startTestServer(env);
  });
  afterAll(async () => {
    await a?.stop();
    await b?.stop();
  });

  test("deltas relay live to B; a late joiner on B ends with the exact text; appends go to the holder", async () => {
    const owner = await a.principal();
    const agent = await a.principal({ type: "agent" });
    const conversationId = await groupConversation(a, owner, [agent]);
    const path = `/api/conversations/${conversationId}/messages`;
    const watcher = await joinedSocket(b, owner, conversationId);
    const mid = (await a.request("POST", path, { as: agent, body: { content: "", streaming: true } })).body.id;
    let expected = "";
    for (let i = 0; i < 50; i++) {
      expected += `${i} `;
      expect((await a.request("POST", `${path}/${mid}/append`, { as: agent, body: { delta: `${i} ` } })).status).toBe(200);
    }
    await eventually(() => watcher.count((f) => f.event === "message:delta" && f.data.messageId === mid) === 50, 5000, "50 deltas on B");
    const live = watcher.frames.filter((f) => f.event === "message:delta").map((f) => f.data);
    expect(live.map((d) => d.delta).join("")).toBe(expected);
    expect(live.every((d, i) => i === 0 || d.offset === live[i - 1].offset + live[i - 1].delta.length)).toBe(true);

    const refused = await b.request("POST", `${path}/${mid}/append`, { as: agent, body: { delta: "x" } });
    expect(refused.status).toBe(409);
    expect(refused.body.code).toBe("conflict");

    await Bun.sleep(300);
    const late = sdkClient(b, owner).realtime();
    await late.connect();
    const texts: StreamText[] = [];
    late.on("stream:text", (change) => change.messageId === mid && texts.push(change));
    const joined = await late.join(conversationId);
    expect(joined.streams).toContainEqual({ messageId: mid, length: expected.length });
    for (let i = 50; i < 80; i++) {
      expected += `${i} `;
      await a.request("POST", `${path}/${mid}/append`, { as: agent, body: { delta: `${i} ` } });
    }
    await eventually(() => late.streamText(mid) === expected, 5000, "the late joiner's text");
    const finished = await a.request("POST", `${path}/${mid}/finish`, { as: agent, body: {} });
    expect(finished.body).toMatchObject({ content: expected, stream_state: "complete" });
    await eventually(() => texts.at(-1)?.state === "complete", 5000, "the end heard on B");
    expect(texts.at(-1)!.text).toBe(expected);
    late.close();
    watcher.close();
  });

  test("a cancel made on B ends the stream held by A within a flush interval", async () => {
    const owner = await a.principal();
    const agent = await a.principal({ type: "agent" });
    const conversationId = await groupConversation(a, owner, [agent]);
    const path = `/api/conversations/${conversationId}`;
    const mid = (await a.request("POST", `${path}/messages`, { as: agent, body: { content: "", streaming: true, runId: "far" } })).body.id;
    await a.request("POST", `${path}/messages/${mid}/append`, { as: agent, body: { delta: "partial" } });
    expect((await b.request("POST", `${path}/control`, { as: owner, body: { event: "stream.cancel", runId: "far" } })).status).toBe(201);
    let code: string | undefined;
    const deadline = Date.now() + 3000;
    while (!code && Date.now() < deadline) {
      const res = await a.request("POST", `${path}/messages/${mid}/append`, { as: agent, body: { delta: "." } });
      if (res.status !== 200) code = res.body.code;
      else await Bun.sleep(20);
    }
    expect(code).toBe("run_ended");
    const read = await b.request("GET", `${path}/messages/${mid}`, { as: owner });
    expect(read.body.stream_state).toBe("cancelled");
    expect(read.body.content.startsWith("partial")).toBe(true);
  });
});
