#!/usr/bin/env node
/**
 * Echo agent: with an API key, finds the conversations it takes part in, watches them over the WebSocket,
 * and answers every message that is not its own with "echo: <content>".
 *
 *   SYMBIA_URL=http://localhost:5005 SYMBIA_API_KEY=sk_… node examples/echo-agent.mjs
 *
 * The server announces new messages only to sockets that joined the conversation, and has no event for
 * "you were added somewhere", so the agent lists its conversations every POLL_MS (default 2000) and joins
 * the new ones. Messages sent before it started are left alone; those sent in a conversation before the
 * agent noticed it are replayed by the join and answered.
 */
import { MessagingClient } from "@symbia/messaging-client";

const baseUrl = process.env.SYMBIA_URL ?? "http://localhost:5005";
const apiKey = process.env.SYMBIA_API_KEY;
const pollMs = Number(process.env.POLL_MS ?? 2000);
if (!apiKey) {
  console.error("echo-agent: set SYMBIA_API_KEY (create one with: symbia-messaging keys create --principal echo --type agent)");
  process.exit(2);
}

const client = new MessagingClient({ baseUrl, apiKey });
const me = await client.me();
const startedAt = new Date();
const socket = client.realtime();

socket.on("message:new", async (message) => {
  if (message.sender_id === me.id) return;
  // Control events arrive as messages too; and two echo agents in one room must not answer each other forever.
  if (message.content_type === "event" || message.metadata?.echoOf) return;
  if (new Date(message.created_at) < startedAt) return;
  try {
    await socket.send(message.conversation_id, { content: `echo: ${message.content}`, replyTo: message.id, metadata: { echoOf: message.id } });
  } catch (error) {
    console.error(`echo-agent: could not answer ${message.id}: ${error.code ?? ""} ${error.message}`);
  }
});
socket.on("close", ({ code, reconnecting }) => console.log(`echo-agent: connection closed (${code})${reconnecting ? ", reconnecting" : ""}`));
socket.on("resumeFailed", ({ conversationId, code }) => console.log(`echo-agent: left ${conversationId} (${code})`));

/** Every conversation the agent takes part in, page by page. */
async function myConversations() {
  const all = [];
  for (let offset = 0; ; offset += 100) {
    const page = await client.listConversations({ limit: 100, offset });
    all.push(...page);
    if (page.length < 100) return all;
  }
}

let firstRound = true;
async function joinNewConversations() {
  const joined = new Set(socket.joined());
  for (const conversation of await myConversations()) {
    if (joined.has(conversation.id)) continue;
    // At start, watch from now on; a conversation found later is replayed from its start, so what was said
    // before the agent noticed it is answered too (older than the agent's start: skipped above).
    await socket.join(conversation.id, firstRound ? {} : { since: 0 });
    console.log(`echo-agent: watching ${conversation.id}${conversation.name ? ` (${conversation.name})` : ""}`);
  }
  firstRound = false;
}

await socket.connect();
await joinNewConversations();
console.log(`echo-agent: ready as ${me.id} on ${baseUrl}`);

const timer = setInterval(() => {
  joinNewConversations().catch((error) => console.error(`echo-agent: listing conversations failed: ${error.message}`));
}, pollMs);

for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    clearInterval(timer);
    socket.close();
    process.exit(0);
  });
}
