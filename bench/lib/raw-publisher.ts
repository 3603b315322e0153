/**
 * The raw baseline of the WebSocket benchmarks: a bare Bun.serve with native WebSocket pub/sub and no
 * database, no authentication, no ordering, no presence. It speaks just enough of the protocol for the
 * benchmark's clients to use it unchanged:
 *
 *   on open             → `session:ready`
 *   join:conversation   → subscribe to the topic `conversation:<id>`, ack
 *   message:send        → publish a `message:new` frame on the topic (a message built from TEMPLATE, the
 *                         JSON of a message the product returned, with the new id, content, sequence and
 *                         time: the same fields and size as the product's frame), then ack with it
 *   message:append      → publish a `message:delta` frame `{conversationId, messageId, offset, delta}` on
 *                         the topic (the offset kept per message), ack with the new length when asked
 *                         (bench/streaming.ts; the data carries conversationId)
 *   ping                → ack
 *
 * Bun's WebSocket settings are the product's (src/realtime/socket-options.ts with the same environment).
 *
 *   PORT=5099 TEMPLATE='{"id":...}' bun run bench/lib/raw-publisher.ts
 */
import { randomUUID } from "node:crypto";
import { loadConfig } from "../../src/config";
import { realtimeSocketOptions } from "../../src/realtime/socket-options";

const template = JSON.parse(process.env.TEMPLATE || "{}") as Record<string, unknown>;
const settings = realtimeSocketOptions(loadConfig());
let sequence = 0;
/** Length so far of each streamed message, for the offsets of its deltas. */
const streamLengths = new Map<string, number>();

const ack = (id: unknown, json: string) => `{"event":"ack","ack":${JSON.stringify(id)},"ok":true,"data":${json}}`;

interface ClientFrame {
  event: string;
  data?: any;
  ack?: string | number;
}

const server = Bun.serve<Record<string, never>>({
  port: Number(process.env.PORT ?? 0),
  hostname: "127.0.0.1",
  fetch(request, server) {
    const path = new URL(request.url).pathname;
    if (path === "/api/ws" && server.upgrade(request, { data: {} })) return undefined;
    if (path === "/health") return new Response("ok");
    return new Response("not found", { status: 404 });
  },
  websocket: {
    ...settings,
    open(ws) {
      ws.send(
        JSON.stringify({
          event: "session:ready",
          data: { connectionId: randomUUID(), user: { id: "raw", type: "user" }, heartbeatMs: settings.idleTimeout * 500, serverTime: new Date().toISOString() },
        }),
      );
    },
    message(ws, raw) {
      let frame: ClientFrame;
      try {
        frame = JSON.parse(String(raw));
      } catch {
        ws.send('{"event":"error","data":{"code":"invalid_frame","message":"not JSON"}}');
        return;
      }
      const conversationId = typeof frame.data === "string" ? frame.data : frame.data?.conversationId;
      switch (frame.event) {
        case "message:send": {
          const message = {
            ...template,
            id: randomUUID(),
            conversation_id: conversationId,
            content: frame.data.content,
            sequence: ++sequence,
            created_at: new Date().toISOString(),
          };
          const json = JSON.stringify(message);
          server.publish(`conversation:${conversationId}`, `{"event":"message:new","data":${json}}`, false);
          if (frame.ack !== undefined) ws.send(ack(frame.ack, json));
          return;
        }
        case "message:append": {
          const { messageId, delta } = frame.data as { messageId: string; delta: string };
          const offset = streamLengths.get(messageId) ?? 0;
          streamLengths.set(messageId, offset + delta.length);
          const json = JSON.stringify({ conversationId, messageId, offset, delta });
          server.publish(`conversation:${conversationId}`, `{"event":"message:delta","data":${json}}`, false);
          if (frame.ack !== undefined) ws.send(ack(frame.ack, JSON.stringify({ messageId, length: offset + delta.length })));
          return;
        }
        case "join:conversation":
          ws.subscribe(`conversation:${conversationId}`);
          if (frame.ack !== undefined) {
            ws.send(ack(frame.ack, JSON.stringify({ conversationId, lastSequence: sequence, replayed: 0, truncated: false, presence: [] })));
          }
          return;
        case "ping":
          if (frame.ack !== undefined) ws.send(ack(frame.ack, JSON.stringify({ serverTime: new Date().toISOString() })));
          return;
        default:
          ws.send(JSON.stringify({ event: "error", data: { code: "unknown_event", message: frame.event } }));
      }
    },
  },
});

process.stdout.write(`listening ${server.port}\n`);
process.on("SIGTERM", () => {
  server.stop(true);
  process.exit(0);
});
