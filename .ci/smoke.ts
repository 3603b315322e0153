/**
 * Smoke test of the compiled executable, run from an empty directory outside the repository: first start
 * on a fresh embedded database, health, principals created with the operator CLI, a message sent over REST
 * and received over WebSocket, SIGTERM closes sockets with 1001 and exits 0.
 * Usage: bun run .ci/smoke.ts /path/to/symbia-messaging
 */
import { copyFileSync } from "node:fs";
import { join } from "node:path";
import { freePort, runCommand, startServer, tempDir, type ServerProcess } from "../test/support/harness";

const binary = process.argv[2];
if (!binary) throw new Error("usage: smoke.ts <binary>");
const dir = tempDir("symbia-smoke-");
const executable = join(dir, "symbia-messaging");
copyFileSync(binary, executable);
Bun.spawnSync(["chmod", "+x", executable]);

const port = freePort();
const base = `http://127.0.0.1:${port}`;
const env = { ...process.env, PORT: String(port), HOST: "127.0.0.1", DATA_DIR: join(dir, "data"), DATABASE_URL: "", LOG_LEVEL: "warn" } as Record<string, string>;
const check = (ok: boolean, what: string) => {
  if (!ok) throw new Error(`smoke: ${what}`);
  console.log(`smoke: ${what}: ok`);
};

/** The executable with no arguments (it serves), from the empty directory; resolves once healthy. */
async function start(timeoutMs: number): Promise<{ server: ServerProcess; ms: number }> {
  const started = performance.now();
  const server = await startServer({ command: [executable], cwd: dir, env, port, healthTimeoutMs: timeoutMs, label: "symbia-messaging", echo: true });
  return { server, ms: performance.now() - started };
}

async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`smoke: ${what} not within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Runs an operator command of the binary against the running server; returns its stdout. */
async function cli(args: string[], stdin?: string): Promise<string> {
  const { code, stdout, stderr } = await runCommand([executable, ...args], { cwd: dir, env, stdin, timeoutMs: 30_000 });
  if (code !== 0) throw new Error(`smoke: ${args.slice(0, 2).join(" ")} exited ${code}: ${stderr.trim()}`);
  return stdout.trim();
}

/** A WebSocket that records frames and its close, with bounded waits. */
function openSocket(url: string, headers?: Record<string, string>) {
  const frames: any[] = [];
  const ws = new WebSocket(url, headers ? ({ headers } as any) : undefined);
  const closed = new Promise<number>((resolve) => ws.addEventListener("close", (event) => resolve(event.code)));
  ws.addEventListener("message", (event) => frames.push(JSON.parse(String(event.data))));
  const next = (match: (frame: any) => boolean, what: string) =>
    within(5_000, what, (async () => {
      for (;;) {
        const found = frames.find(match);
        if (found) return found;
        await Bun.sleep(10);
      }
    })());
  return { ws, frames, closed, next };
}

const first = await start(15_000);
let server = first.server;
try {
  check(true, `healthy ${Math.round(first.ms)} ms after a cold first start`);
  const unauth = await fetch(`${base}/api/auth/me`);
  check(unauth.status === 401, "anonymous request is 401");

  // Principals made by the operator CLI, through the running server's admin socket.
  const email = "smoke@example.test";
  const password = "smoke-password-1";
  const userId = await cli(["users", "create", "--email", email, "--password-stdin"], `${password}\n`);
  const agentKey = await cli(["keys", "create", "--principal", "agent:smoke", "--type", "agent"]);
  check(userId.length > 0 && agentKey.length > 0, "users create and keys create");
  const login = await fetch(`${base}/api/auth/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email, password }),
  });
  const { token } = (await login.json()) as { token: string };
  check(login.status === 200 && Boolean(token), "login with the new user");
  const auth = { authorization: `Bearer ${token}`, "content-type": "application/json" };
  const created = await fetch(`${base}/api/conversations`, {
    method: "POST",
    headers: auth,
    body: JSON.stringify({ type: "group", name: "smoke", participants: [{ userId: "agent:smoke", userType: "agent" }] }),
  });
  const conversation = (await created.json()) as { id: string };
  check(created.status === 201, "conversation created");

  // The agent watches over WebSocket (key in the query, as a browser would), the user with a header.
  const wsBase = base.replace(/^http/, "ws") + "/api/ws";
  const agentSocket = openSocket(`${wsBase}?apiKey=${encodeURIComponent(agentKey)}`);
  const userSocket = openSocket(wsBase, { authorization: `Bearer ${token}` });
  for (const [socket, who] of [[agentSocket, "agent"], [userSocket, "user"]] as const) {
    await socket.next((f) => f.event === "session:ready", `${who} session:ready`);
    socket.ws.send(JSON.stringify({ event: "join:conversation", data: { conversationId: conversation.id }, ack: "join" }));
    const ack = await socket.next((f) => f.event === "ack" && f.ack === "join", `${who} join ack`);
    check(ack.ok === true, `${who} joined over WebSocket`);
  }
  const sent = await fetch(`${base}/api/conversations/${conversation.id}/messages`, {
    method: "POST",
    headers: auth,
    body: JSON.stringify({ content: "hello from the smoke test" }),
  });
  const message = (await sent.json()) as { id: string };
  check(sent.status === 201, "message sent over REST");
  for (const [socket, who] of [[agentSocket, "agent"], [userSocket, "user"]] as const) {
    const received = await socket.next((f) => f.event === "message:new", `${who} message:new`);
    check(received.data.id === message.id && received.data.content === "hello from the smoke test", `${who} received it over WebSocket`);
  }

  server.kill("SIGTERM");
  const closeCodes = await within(10_000, "sockets closed on SIGTERM", Promise.all([agentSocket.closed, userSocket.closed]));
  check(closeCodes.every((code) => code === 1001), "SIGTERM closes sockets with 1001");
  check((await server.exited) === 0, "SIGTERM exits 0");

  const restarted = await start(10_000);
  server = restarted.server;
  check(true, `healthy ${Math.round(restarted.ms)} ms after a restart`);
  server.kill("SIGTERM");
  check((await server.exited) === 0, "SIGTERM exits 0 again");
} finally {
  server.kill("SIGKILL");
}
