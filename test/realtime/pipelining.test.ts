/**
 * Pipelined sockets: a connection may have several `message:send` frames in flight (WS_SEND_WINDOW);
 * acks come as each send is written, sends into one conversation keep the order of their frames, and every
 * other frame still waits for the frames before it and holds back the frames after it.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Database } from "../../src/db/client";
import { startTestServer, type TestPrincipal, type TestServer } from "../support/server";
import { useEndToEndTimeout } from "../support/timeout";
import { eventually, groupConversation, openSocket, restSend, type Frame, type RawSocket } from "./helpers";

useEndToEndTimeout();

const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const acksOf = (socket: RawSocket) => socket.frames.filter((f) => f.event === "ack");

/**
 * Holds every statement of the database until released: what a slow database looks like to the frames
 * waiting behind it. Returns how many statements are held, and the release.
 */
function holdStatements(database: Database): { held: () => number; release: () => void } {
  const original = { query: database.query, batch: (database as { batch?: unknown }).batch };
  const waiting: (() => void)[] = [];
  let open = false;
  const gate = () => (open ? Promise.resolve() : new Promise<void>((resolve) => waiting.push(resolve)));
  database.query = async <T>(text: string, params: unknown[]) => {
    await gate();
    return original.query.call(database, text, params) as Promise<T[]>;
  };
  if (typeof original.batch === "function") {
    (database as unknown as { batch: (...args: unknown[]) => Promise<unknown> }).batch = async (...args: unknown[]) => {
      await gate();
      return (original.batch as (...args: unknown[]) => Promise<unknown>).apply(database, args);
    };
  }
  return {
    held: () => waiting.length,
    release: () => {
      open = true;
      database.query = original.query;
      if (typeof original.batch === "function") (database as unknown as { batch: unknown }).batch = original.batch;
      for (const resume of waiting.splice(0)) resume();
    },
  };
}

describe("a window of sends in flight", () => {
  let server: TestServer;
  let owner: TestPrincipal;
  let service: TestPrincipal;
  beforeAll(async () => {
    server = await startTestServer({ WS_SEND_WINDOW: "16" });
    owner = await server.principal();
    service = await server.principal({ type: "service" });
  });
  afterAll(() => server.stop());

  test("sends into several conversations, frames not waiting for acks: each conversation's sequences follow frame order", async () => {
    const conversations = await Promise.all(range(4).map(() => groupConversation(server, owner, [service])));
    const socket = await openSocket(server, service);
    const total = 240;
    // Frame i goes into conversation i mod 4; its content says its place among that conversation's frames.
    for (const i of range(total)) {
      const conversationId = conversations[i % 4];
      socket.send({ event: "message:send", data: { conversationId, content: `${Math.floor(i / 4)}` }, ack: i });
    }
    // Meanwhile someone else writes into the first conversation over REST.
    const others = await Promise.all(range(20).map((n) => restSend(server, owner, conversations[0], `rest ${n}`)));
    await eventually(() => acksOf(socket).length === total, 30_000, "every ack");
    const acks = acksOf(socket);
    expect(acks.filter((f) => f.ok !== true)).toEqual([]);
    const byFrame = new Map(acks.map((f) => [f.ack as number, f.data]));
    for (const [index, conversationId] of conversations.entries()) {
      const mine = range(total / 4).map((n) => byFrame.get(n * 4 + index));
      expect(mine.map((m) => m.conversation_id)).toEqual(Array(total / 4).fill(conversationId));
      expect(mine.map((m) => m.content)).toEqual(range(total / 4).map(String));
      const sequences = mine.map((m) => m.sequence);
      // Strictly increasing in frame order; in the conversation without REST sends, exactly 1..60.
      expect(sequences).toEqual([...sequences].sort((a, b) => a - b));
      expect(new Set(sequences).size).toBe(sequences.length);
      if (index > 0) expect(sequences).toEqual(range(total / 4).map((n) => n + 1));
    }
    const first = [...others.map((m) => m.sequence), ...range(total / 4).map((n) => byFrame.get(n * 4).sequence)].sort((a, b) => a - b);
    expect(first).toEqual(range(total / 4 + 20).map((n) => n + 1));
    socket.close();
  });

  test("the same conversation spelt in capitals or not is one conversation: frame order is kept across both", async () => {
    const conversationId = await groupConversation(server, owner, [service]);
    const socket = await openSocket(server, service);
    for (const i of range(40)) {
      const spelt = i % 2 ? conversationId.toUpperCase() : conversationId;
      socket.send({ event: "message:send", data: { conversationId: spelt, content: `${i}` }, ack: i });
    }
    await eventually(() => acksOf(socket).length === 40, 10_000, "every ack");
    const byFrame = new Map(acksOf(socket).map((f) => [f.ack as number, f.data]));
    expect(range(40).map((i) => byFrame.get(i).sequence)).toEqual(range(40).map((i) => i + 1));
    socket.close();
  });

  test("an edit right after its send, without waiting for the send's ack, finds the message", async () => {
    const conversationId = await groupConversation(server, owner, [service]);
    const socket = await openSocket(server, service);
    const id = crypto.randomUUID();
    socket.send({ event: "message:send", data: { conversationId, id, content: "first" }, ack: "send" });
    socket.send({ event: "message:edit", data: { conversationId, messageId: id, content: "second" }, ack: "edit" });
    socket.send({ event: "message:send", data: { conversationId, content: "after the edit" }, ack: "after" });
    await eventually(() => acksOf(socket).length === 3, 10_000, "three acks");
    expect(acksOf(socket).map((f) => [f.ack, f.ok])).toEqual([
      ["send", true],
      ["edit", true],
      ["after", true],
    ]);
    const [, edit, after] = acksOf(socket) as Frame[];
    expect(edit.data).toMatchObject({ id, content: "second", version: 2 });
    expect(after.data.sequence).toBe(2);
    socket.close();
  });

  test("a leave after pipelined sends runs once they are all answered: the socket heard every one of them", async () => {
    const conversationId = await groupConversation(server, owner, [service]);
    const socket = await openSocket(server, service);
    expect((await socket.request("join:conversation", { conversationId })).ok).toBe(true);
    for (const i of range(20)) socket.send({ event: "message:send", data: { conversationId, content: `m${i}` }, ack: i });
    const left = await socket.request("leave:conversation", { conversationId }, 10_000);
    expect(left.ok).toBe(true);
    const leaveAt = socket.frames.indexOf(left);
    const heard = socket.frames.slice(0, leaveAt).filter((f) => f.event === "message:new").map((f) => f.data.sequence);
    expect(heard).toEqual(range(20).map((n) => n + 1));
    expect(socket.frames.slice(0, leaveAt).filter((f) => f.event === "ack" && f.ok === true)).toHaveLength(20 + 1);
    // A send after the leave is stored, but the socket no longer hears the conversation.
    expect((await socket.request("message:send", { conversationId, content: "after" })).data.sequence).toBe(21);
    await socket.expectNone("message:new", 100);
    socket.close();
  });
});

describe("streams and the window", () => {
  test("sends that open streams run one at a time: the connection's stream limit holds when they are sent at once", async () => {
    const server = await startTestServer({ STREAM_MAX_PER_CONNECTION: "2" });
    try {
      const owner = await server.principal();
      const agent = await server.principal({ type: "agent" });
      const conversationId = await groupConversation(server, owner, [agent]);
      const socket = await openSocket(server, agent);
      for (const i of range(4)) socket.send({ event: "message:send", data: { conversationId, content: "", streaming: true }, ack: i });
      await eventually(() => acksOf(socket).length === 4, 10_000, "every ack");
      expect(acksOf(socket).map((f) => (f.ok ? "ok" : f.error!.code))).toEqual(["ok", "ok", "too_many_streams", "too_many_streams"]);
      socket.close();
    } finally {
      await server.stop();
    }
  });
});

describe("the window's limit", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ WS_SEND_WINDOW: "2" });
  });
  afterAll(() => server.stop());

  test("no more than the window is in flight; later sends and other frames wait, then everything is answered in order", async () => {
    const owner = await server.principal();
    const service = await server.principal({ type: "service" });
    const conversations = await Promise.all(range(5).map(() => groupConversation(server, owner, [service])));
    const socket = await openSocket(server, service);
    const connectionId = (socket.frames.find((f) => f.event === "session:ready")!.data as { connectionId: string }).connectionId;
    const connection = server.server.realtime.connection(connectionId)!;
    const { database } = server.server.services;

    const hold = holdStatements(database);
    try {
      for (const i of range(5)) socket.send({ event: "message:send", data: { conversationId: conversations[i], content: `m${i}` }, ack: `send${i}` });
      socket.send({ event: "ping", ack: "ping" });
      socket.send({ event: "message:send", data: { conversationId: conversations[0], content: "after the ping" }, ack: "last" });
      await eventually(() => connection.sendsInFlight === 2 && hold.held() >= 1, 5000, "two sends in flight");
      // Held there: nothing is answered, and no third send starts while the first two are held.
      await socket.expectNone("ack", 200);
      expect(connection.sendsInFlight).toBe(2);
    } finally {
      hold.release();
    }
    await eventually(() => acksOf(socket).length === 7, 10_000, "every ack");
    const order = acksOf(socket).map((f) => f.ack);
    expect(acksOf(socket).every((f) => f.ok === true)).toBe(true);
    // The ping waited for all five sends, and the send after it for the ping.
    expect(order.slice(5)).toEqual(["ping", "last"]);
    expect(new Set(order.slice(0, 5))).toEqual(new Set(range(5).map((i) => `send${i}`)));
    expect(acksOf(socket).find((f) => f.ack === "last")!.data.sequence).toBe(2);
    expect(connection.sendsInFlight).toBe(0);
    socket.close();
  });

  test("a window of one handles sends one at a time, as before", async () => {
    const one = await startTestServer({ WS_SEND_WINDOW: "1" });
    try {
      const owner = await one.principal();
      const service = await one.principal({ type: "service" });
      const conversations = await Promise.all(range(3).map(() => groupConversation(one, owner, [service])));
      const socket = await openSocket(one, service);
      const connectionId = (socket.frames.find((f) => f.event === "session:ready")!.data as { connectionId: string }).connectionId;
      const connection = one.server.realtime.connection(connectionId)!;
      let most = 0;
      const sampler = setInterval(() => (most = Math.max(most, connection.sendsInFlight)), 1);
      for (const i of range(30)) socket.send({ event: "message:send", data: { conversationId: conversations[i % 3], content: `m${i}` }, ack: i });
      await eventually(() => acksOf(socket).length === 30, 10_000, "every ack");
      clearInterval(sampler);
      expect(most).toBeLessThanOrEqual(1);
      expect(acksOf(socket).map((f) => f.ack)).toEqual(range(30));
      socket.close();
    } finally {
      await one.stop();
    }
  });
});
