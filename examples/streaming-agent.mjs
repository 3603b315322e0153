#!/usr/bin/env node
/**
 * Streaming agent: answers each message in its conversations with a run holding one streaming message
 * that grows a word at a time, and stops the moment someone pauses, preempts or cancels the run (its abort
 * signal fires), or hands it on.
 *
 *   SYMBIA_URL=http://localhost:5005 SYMBIA_API_KEY=smk_… node examples/streaming-agent.mjs
 *
 * The "model" here is a stand-in that produces a word every CHUNK_MS (default 100) and honours an
 * AbortSignal, as fetch() to a real model API does: pass `run.signal` to the model call and the call stops
 * when a person says stop. Each word is appended to the answer (watchers see it as `message:delta`); a
 * paused run refuses appends anyway, and a cancelled one ends the answer as `cancelled`.
 */
import { MessagingClient, RunHandle } from "@symbia/messaging-client";

const baseUrl = process.env.SYMBIA_URL ?? "http://localhost:5005";
const apiKey = process.env.SYMBIA_API_KEY;
const chunkMs = Number(process.env.CHUNK_MS ?? 100);
const pollMs = Number(process.env.POLL_MS ?? 2000);
if (!apiKey) {
  console.error("streaming-agent: set SYMBIA_API_KEY (symbia-messaging keys create --principal writer --type agent)");
  process.exit(2);
}

/** A model that streams words until it is done or `signal` aborts. */
async function* model(prompt, signal) {
  const words = `Here is a long answer to "${prompt}", told one word at a time so that you can stop me whenever you like`.split(" ");
  for (const word of words) {
    await new Promise((resolve, reject) => {
      const timer = setTimeout(resolve, chunkMs);
      signal.addEventListener("abort", () => (clearTimeout(timer), reject(signal.reason)), { once: true });
    });
    yield word;
  }
}

const client = new MessagingClient({ baseUrl, apiKey });
const me = await client.me();
const socket = client.realtime();
const startedAt = new Date();

async function answer(message) {
  const run = await client.startRun(message.conversation_id, { socket, metadata: { answering: message.id } });
  console.log(`streaming-agent: run ${run.id} started for ${message.id}`);
  let chunks = 0;
  try {
    const reply = await run.stream({ replyTo: message.id });
    for await (const word of model(message.content, run.signal)) {
      await reply.append(chunks++ === 0 ? word : ` ${word}`);
    }
    await reply.finish();
    await run.complete();
    console.log(`streaming-agent: run ${run.id} completed after ${chunks} chunks`);
  } catch (error) {
    const reason = RunHandle.reasonOf(run.signal) ?? error.code;
    if (run.signal.aborted) console.log(`streaming-agent: run ${run.id} stopped (${reason}) after ${chunks} chunks`);
    else {
      console.error(`streaming-agent: run ${run.id} failed: ${error.message}`);
      await run.fail(String(error.message)).catch(() => {});
    }
  } finally {
    run.dispose();
  }
}

socket.on("message:new", (message) => {
  if (message.sender_id === me.id || message.content_type === "event" || message.run_id) return;
  if (new Date(message.created_at) < startedAt) return;
  answer(message).catch((error) => console.error(`streaming-agent: ${error.message}`));
});

async function joinNewConversations() {
  const joined = new Set(socket.joined());
  for (let offset = 0; ; offset += 100) {
    const page = await client.listConversations({ limit: 100, offset });
    for (const conversation of page) if (!joined.has(conversation.id)) await socket.join(conversation.id, { since: 0 });
    if (page.length < 100) return;
  }
}

await socket.connect();
await joinNewConversations();
console.log(`streaming-agent: ready as ${me.id} on ${baseUrl}`);
const timer = setInterval(() => joinNewConversations().catch((error) => console.error(error.message)), pollMs);
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    clearInterval(timer);
    socket.close();
    process.exit(0);
  });
}
