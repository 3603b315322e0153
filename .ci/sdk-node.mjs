/**
 * The SDK as a user gets it: this script runs with plain Node (≥ 20, no Bun) in an empty project where the
 * packed @symbia/messaging-client was installed with npm, against the compiled server it starts on a free
 * port with an empty data directory. It logs in with an API key made by the operator CLI, creates a
 * conversation, sends and receives over the WebSocket, resumes with nothing missing after the client
 * drops and after the server restarts, then runs the echo agent example and checks its answer.
 * Usage (from that project): node sdk-node.mjs /path/to/symbia-messaging
 */
import { spawn, execFile } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MessagingClient } from "@symbia/messaging-client";

const binary = process.argv[2];
if (!binary) throw new Error("usage: node sdk-node.mjs <symbia-messaging executable>");
const dir = mkdtempSync(join(tmpdir(), "symbia-sdk-node-"));

const check = (ok, what) => {
  if (!ok) throw new Error(`sdk-node: ${what}`);
  console.log(`sdk-node: ${what}: ok`);
};
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function within(ms, what, promise) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`sdk-node: ${what} not within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Waits until `condition()` holds, polling. */
async function until(condition, what, ms = 10_000) {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`sdk-node: ${what} not within ${ms} ms`);
    await sleep(20);
  }
}

const port = await new Promise((resolve, reject) => {
  const probe = createServer();
  probe.once("error", reject);
  probe.listen(0, "127.0.0.1", () => {
    const { port } = probe.address();
    probe.close(() => resolve(port));
  });
});
const baseUrl = `http://127.0.0.1:${port}`;
// The webhook receiver example listens on loopback, which a server refuses to deliver to unless told.
const env = { ...process.env, PORT: String(port), HOST: "127.0.0.1", DATA_DIR: join(dir, "data"), DATABASE_URL: "", LOG_LEVEL: "warn", WEBHOOK_ALLOW_PRIVATE: "true", WEBHOOK_POLL_MS: "200" };

function startServer() {
  const child = spawn(binary, ["serve"], { cwd: dir, env, stdio: ["ignore", "inherit", "inherit"] });
  child.exitCode_ = new Promise((resolve) => child.once("exit", (code) => resolve(code)));
  return child;
}

async function waitHealthy(ms) {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      if ((await fetch(`${baseUrl}/api/health`)).status === 200) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`sdk-node: server not healthy within ${ms} ms`);
    await sleep(50);
  }
}

/** An operator command of the executable, through the running server's admin socket. */
function cli(args, stdin) {
  return within(30_000, args.slice(0, 2).join(" "), new Promise((resolve, reject) => {
    const child = execFile(binary, args, { cwd: dir, env }, (error, stdout, stderr) => {
      if (error) reject(new Error(`sdk-node: ${args.slice(0, 2).join(" ")} failed: ${stderr.trim() || error.message}`));
      else resolve(stdout.trim());
    });
    if (stdin !== undefined) child.stdin.end(stdin);
    else child.stdin.end();
  }));
}

async function stopServer(child) {
  child.kill("SIGTERM");
  return within(15_000, "server exit on SIGTERM", child.exitCode_);
}

let server = startServer();
let echo;
let writer;
let receiver;
try {
  // A cold first start creates the embedded database: seconds, more on a busy machine.
  await waitHealthy(90_000);
  check(typeof WebSocket === "undefined" || Number(process.versions.node.split(".")[0]) >= 22, `running on Node ${process.versions.node}`);

  const email = "sdk-user@example.test";
  const password = "sdk-node-password-1";
  await cli(["users", "create", "--email", email, "--password-stdin"], `${password}\n`);
  const agentKey = await cli(["keys", "create", "--principal", "agent:sdk-node", "--type", "agent"]);
  const echoKey = await cli(["keys", "create", "--principal", "agent:echo", "--type", "agent"]);
  const writerKey = await cli(["keys", "create", "--principal", "agent:writer", "--type", "agent"]);
  check(agentKey.length > 0 && echoKey.length > 0 && writerKey.length > 0, "API keys created with the CLI");

  // The agent logs in with its API key; the user with a password.
  const agent = new MessagingClient({ baseUrl, apiKey: agentKey });
  const agentMe = await agent.me();
  check(agentMe.id === "agent:sdk-node" && agentMe.type === "agent", "API key accepted (me)");
  const user = new MessagingClient({ baseUrl });
  const login = await user.login(email, password);
  check(Boolean(login.token), "user login");

  const conversation = await agent.createConversation({ type: "group", name: "sdk on node", participants: [{ userId: login.user.id, userType: "user" }] });
  check(conversation.participants.length === 2, "conversation created by the agent");

  const agentSocket = agent.realtime({ reconnect: { initialDelayMs: 200, maxDelayMs: 1000 } });
  const userSocket = user.realtime({ reconnect: { initialDelayMs: 200, maxDelayMs: 1000 } });
  const agentSaw = [];
  const userSaw = [];
  agentSocket.on("message:new", (m) => m.conversation_id === conversation.id && agentSaw.push(m));
  userSocket.on("message:new", (m) => userSaw.push(m));
  const closes = [];
  agentSocket.on("close", (c) => closes.push(c));
  await within(10_000, "connect", Promise.all([agentSocket.connect(), userSocket.connect()]));
  await Promise.all([agentSocket.join(conversation.id), userSocket.join(conversation.id)]);

  const fromUser = await userSocket.send(conversation.id, { content: "hello agent" });
  await until(() => agentSaw.some((m) => m.id === fromUser.id), "the agent receiving the user's message");
  const fromAgent = await agentSocket.send(conversation.id, { content: "hello user" });
  await until(() => userSaw.some((m) => m.id === fromAgent.id), "the user receiving the agent's message");
  check(true, "messages sent and received over the WebSocket (ws on Node)");

  const expectAll = async (count, what) => {
    await until(() => agentSaw.length >= count, what);
    await sleep(200); // anything extra would be a duplicate
    const sequences = agentSaw.map((m) => m.sequence);
    const expected = Array.from({ length: count }, (_, i) => i + 1);
    check(JSON.stringify(sequences) === JSON.stringify(expected), `${what}: sequences 1..${count}, once each, in order`);
  };
  await expectAll(2, "live messages");

  // The client goes away; messages arrive meanwhile; connect() resumes from the last sequence seen.
  agentSocket.close();
  for (let i = 0; i < 3; i++) await user.sendMessage(conversation.id, { content: `while the agent was away ${i}` });
  await agentSocket.connect();
  await expectAll(5, "resumed after the client reconnected");

  // The server restarts under the client: it reconnects by itself and resumes.
  check((await stopServer(server)) === 0, "server stopped with SIGTERM, exit 0");
  await until(() => closes.some((c) => c.code === 1001 && c.reconnecting), "close 1001 with reconnection");
  server = startServer();
  await waitHealthy(60_000);
  for (let i = 0; i < 3; i++) await user.sendMessage(conversation.id, { content: `after the restart ${i}` });
  await expectAll(8, "resumed after the server restarted");
  check(agentSocket.stats.reconnects >= 1 && agentSocket.stats.duplicatesDropped === 0, `reconnects ${agentSocket.stats.reconnects}, duplicates 0`);
  agentSocket.close();

  // The echo agent example, as a user would run it.
  let echoOutput = "";
  echo = spawn(process.execPath, ["echo-agent.mjs"], {
    env: { ...process.env, SYMBIA_URL: baseUrl, SYMBIA_API_KEY: echoKey, POLL_MS: "300" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  echo.exitCode_ = new Promise((resolve) => echo.once("exit", (code) => resolve(code)));
  echo.stdout.on("data", (chunk) => {
    echoOutput += chunk;
    process.stdout.write(chunk);
  });
  await until(() => echoOutput.includes("echo-agent: ready"), "echo agent ready", 15_000);
  const room = await user.createConversation({ type: "group", name: "echo", participants: [{ userId: "agent:echo", userType: "agent" }] });
  await userSocket.join(room.id);
  const question = await user.sendMessage(room.id, { content: "ping" });
  await until(() => userSaw.some((m) => m.conversation_id === room.id && m.reply_to === question.id), "the echo", 15_000);
  const answer = userSaw.find((m) => m.reply_to === question.id);
  check(answer.sender_id === "agent:echo" && answer.content === "echo: ping", "the echo agent answered the user");
  const second = await userSocket.send(room.id, { content: "again" });
  await until(() => userSaw.some((m) => m.reply_to === second.id), "the second echo");
  await sleep(500);
  check(userSaw.filter((m) => m.conversation_id === room.id).length === 4, "one answer per message, none to its own");
  echo.kill("SIGTERM");
  check((await within(10_000, "echo agent exit", echo.exitCode_)) === 0, "echo agent stopped");
  echo = undefined;

  // The streaming agent example: it answers in a run, chunk by chunk, and stops when the user cancels.
  let writerOutput = "";
  writer = spawn(process.execPath, ["streaming-agent.mjs"], {
    env: { ...process.env, SYMBIA_URL: baseUrl, SYMBIA_API_KEY: writerKey, POLL_MS: "300", CHUNK_MS: "80" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  writer.exitCode_ = new Promise((resolve) => writer.once("exit", (code) => resolve(code)));
  writer.stdout.on("data", (chunk) => {
    writerOutput += chunk;
    process.stdout.write(chunk);
  });
  await until(() => writerOutput.includes("streaming-agent: ready"), "streaming agent ready", 15_000);
  const story = await user.createConversation({ type: "group", name: "story", participants: [{ userId: "agent:writer", userType: "agent" }] });
  await userSocket.join(story.id);
  const runsStarted = [];
  userSocket.on("run:started", (run) => runsStarted.push(run));
  await sleep(800); // the agent notices the new conversation on its next poll
  const texts = [];
  userSocket.on("stream:text", (change) => change.conversationId === story.id && texts.push(change));
  const prompt = await user.sendMessage(story.id, { content: "tell me a story" });
  await until(() => texts.filter((t) => t.added).length >= 3, "three streamed words", 15_000);
  const run = runsStarted.find((r) => r.conversation_id === story.id);
  check(run?.owner_id === "agent:writer" && run.metadata.answering === prompt.id, "the agent answers in a run of its own");
  const streamed = userSaw.find((m) => m.run_id === run.id && m.stream_state === "streaming");
  check(streamed?.reply_to === prompt.id, "the answer is one streaming message replying to the prompt");
  check(`Here is a long answer to "tell me a story"`.startsWith(texts.at(-1).text), `the answer grows word by word (${texts.at(-1).text})`);
  await user.sendControl(story.id, { event: "stream.cancel", runId: run.id });
  await until(() => writerOutput.includes(`run ${run.id} stopped (cancelled)`), "the agent stopping on cancel", 5_000);
  await until(() => texts.at(-1)?.state === "cancelled", "the answer ending as cancelled", 5_000);
  const textAtCancel = texts.at(-1).text;
  await sleep(500);
  check(texts.at(-1).text === textAtCancel, `no word after the cancel (${textAtCancel.split(" ").length} before it)`);
  const stored = (await user.listMessages(story.id)).find((m) => m.id === streamed.id);
  check(stored?.content === textAtCancel && stored.stream_state === "cancelled", "the partial answer is kept, cancelled");
  check((await user.getRun(story.id, run.id)).state === "cancelled", "the run is cancelled");
  writer.kill("SIGTERM");
  check((await within(10_000, "streaming agent exit", writer.exitCode_)) === 0, "streaming agent stopped");
  writer = undefined;

  // The webhook receiver example: the writer agent registers an endpoint and hears messages without a socket.
  const hookPort = await new Promise((resolve) => {
    const probe = createServer();
    probe.listen(0, "127.0.0.1", () => {
      const { port: p } = probe.address();
      probe.close(() => resolve(p));
    });
  });
  const writerClient = new MessagingClient({ baseUrl, apiKey: writerKey });
  const hook = await writerClient.createWebhook({ url: `http://127.0.0.1:${hookPort}/`, events: ["message.created"] });
  check(hook.secret.startsWith("whsec_"), "webhook registered, secret shown once");
  let hookOutput = "";
  receiver = spawn(process.execPath, ["webhook-receiver.mjs"], {
    env: { ...process.env, WEBHOOK_SECRET: hook.secret, PORT: String(hookPort) },
    stdio: ["ignore", "pipe", "inherit"],
  });
  receiver.exitCode_ = new Promise((resolve) => receiver.once("exit", (code) => resolve(code)));
  receiver.stdout.on("data", (chunk) => {
    hookOutput += chunk;
    process.stdout.write(chunk);
  });
  await until(() => hookOutput.includes("webhook-receiver: listening"), "webhook receiver listening", 10_000);
  await user.sendMessage(story.id, { content: "heard without a socket" });
  await until(() => hookOutput.includes("message.created") && hookOutput.includes("heard without a socket"), "a verified webhook delivery", 20_000);
  check(!hookOutput.includes("refused"), "every delivery verified with the standardwebhooks package");
  // A message delivered at its first attempt leaves no row in the delivery log (the endpoint's cursor
  // says it is delivered); a test event is a row, which the log shows delivered once the answer is read.
  const queued = await writerClient.testWebhook(hook.id);
  let delivered = false;
  for (const deadline = Date.now() + 10_000; !delivered && Date.now() < deadline; await sleep(100)) {
    delivered = (await writerClient.listWebhookDeliveries(hook.id)).some((d) => d.id === queued.id && d.type === "webhook.test" && d.status === "delivered");
  }
  check(delivered, "the delivery log says the test event was delivered");
  check((await writerClient.listWebhookDeliveries(hook.id, { status: "pending" })).length === 0, "nothing waits in the delivery log");
  receiver.kill("SIGTERM");
  check((await within(10_000, "webhook receiver exit", receiver.exitCode_)) === 0, "webhook receiver stopped");
  receiver = undefined;

  userSocket.close();
  check((await stopServer(server)) === 0, "server stopped again, exit 0");
} finally {
  echo?.kill("SIGKILL");
  writer?.kill("SIGKILL");
  receiver?.kill("SIGKILL");
  if (server.exitCode === null) server.kill("SIGKILL");
}
