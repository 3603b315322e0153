/**
 * A server killed with SIGKILL while hundreds of sends are being written together: after a restart on the
 * same data (directory or PostgreSQL), every send that was acknowledged is stored, once, and every
 * conversation still counts 1..N with no gap (a send cut off before its answer may or may not be there).
 */
import { afterAll, expect, test } from "bun:test";
import { callAs as call, restartableServer } from "../support/restartable-server";
import { useEndToEndTimeout } from "../support/timeout";

useEndToEndTimeout();

const servers = restartableServer("send-crash");
afterAll(() => servers.cleanUp());
const boot = () => servers.boot();

test("kill -9 under load: no acknowledged send is lost or doubled, and no conversation has a gap", async () => {
  const first = await boot();
  const token = await servers.signIn(first);
  const conversations: string[] = [];
  for (let i = 0; i < 3; i++) {
    const created = await call(first, token, "POST", "/api/conversations", { type: "group", name: `crash ${i}` });
    expect(created.status).toBe(201);
    conversations.push(created.body.id);
  }

  // 48 REST senders and one socket with a window of sends, each send with a client id, until the kill.
  const acknowledged = new Map<string, { conversationId: string; sequence: number }>();
  let stop = false;
  const senders = Array.from({ length: 48 }, async (_, loop) => {
    for (let n = 0; !stop; n++) {
      const id = crypto.randomUUID();
      const conversationId = conversations[(loop + n) % conversations.length];
      try {
        const res = await call(first, token, "POST", `/api/conversations/${conversationId}/messages`, { id, content: `rest ${loop}.${n}` });
        if (res.status === 201) acknowledged.set(id, { conversationId, sequence: res.body.sequence });
      } catch {
        return; // the server is gone
      }
    }
  });
  const socket = new WebSocket(first.wsUrl, { headers: { authorization: `Bearer ${token}` } } as any);
  await new Promise((resolve) => socket.addEventListener("open", resolve));
  const socketSent = new Map<string, string>();
  socket.addEventListener("message", (event) => {
    const frame = JSON.parse(String(event.data));
    if (frame.event === "ack" && frame.ok && socketSent.has(frame.ack)) {
      acknowledged.set(frame.ack, { conversationId: socketSent.get(frame.ack)!, sequence: frame.data.sequence });
    }
  });
  const socketLoop = (async () => {
    for (let n = 0; !stop; n++) {
      const id = crypto.randomUUID();
      const conversationId = conversations[n % conversations.length];
      socketSent.set(id, conversationId);
      if (socket.readyState !== WebSocket.OPEN) return;
      socket.send(JSON.stringify({ event: "message:send", data: { conversationId, id, content: `ws ${n}` }, ack: id }));
      if (n % 20 === 19) await Bun.sleep(5);
    }
  })();

  const deadline = Date.now() + 20_000;
  while (acknowledged.size < 600 && Date.now() < deadline) await Bun.sleep(20);
  first.kill("SIGKILL");
  await first.exited;
  stop = true;
  await Promise.all([...senders, socketLoop]);
  expect(acknowledged.size).toBeGreaterThanOrEqual(600);

  const second = await boot();
  const storedIds = new Map<string, number>();
  for (const conversationId of conversations) {
    const stored: { id: string; sequence: number }[] = [];
    for (;;) {
      const after = stored.length ? stored[stored.length - 1].sequence : 0;
      const page = await call(second, token, "GET", `/api/conversations/${conversationId}/messages?after=${after}&limit=200`);
      expect(page.status).toBe(200);
      if (page.body.length === 0) break;
      stored.push(...page.body);
    }
    expect(stored.map((m) => m.sequence)).toEqual(stored.map((_, i) => i + 1));
    for (const m of stored) {
      expect(storedIds.has(m.id)).toBe(false);
      storedIds.set(m.id, m.sequence);
    }
  }
  const lost = [...acknowledged].filter(([id]) => !storedIds.has(id));
  expect(lost).toEqual([]);
  // Stored where it was acknowledged.
  expect([...acknowledged].filter(([id, { sequence }]) => storedIds.get(id) !== sequence)).toEqual([]);
}, 90_000);
