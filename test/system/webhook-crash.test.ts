/**
 * Webhook deliveries outlive a server killed with SIGKILL, on the data it restarts on (the embedded
 * database's directory, or PostgreSQL): an event whose write was answered 2xx is delivered after the
 * restart, signed (verified with the `standardwebhooks` package), in order per conversation, and a
 * duplicate carries the `webhook-id` of the first attempt.
 *
 * On PostgreSQL the servers get a database of their own, so that the test can lock the outbox table
 * from outside: a row left to the moment after commit could then not be written before the kill.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import postgres from "postgres";
import { createClusterDatabase, type ClusterDatabase } from "../support/cluster";
import { TEST_DATABASE_URL } from "../support/database";
import { minimalEnv, productCommand, startServer, tempDir, type ServerProcess } from "../support/harness";
import { runCli } from "../support/process";
import { useEndToEndTimeout } from "../support/timeout";
import { startWebhookReceiver, type ReceivedWebhook, type WebhookReceiver } from "../support/webhook-receiver";

useEndToEndTimeout();

const dataDir = tempDir("symbia-hook-");
let cluster: ClusterDatabase | undefined;
let env: Record<string, string>;
const started: ServerProcess[] = [];

beforeAll(async () => {
  if (TEST_DATABASE_URL) cluster = await createClusterDatabase();
  env = {
    ...minimalEnv(),
    DATA_DIR: dataDir,
    DATABASE_URL: cluster?.url ?? "",
    LOG_LEVEL: "warn",
    WEBHOOK_ALLOW_PRIVATE: "true",
    WEBHOOK_POLL_MS: "20",
    WEBHOOK_RETRY_BASE_MS: "50",
    WEBHOOK_RETRY_MAX_MS: "200",
    WEBHOOK_TIMEOUT_MS: "1000",
    // Attempts against a receiver that is down must not disable the endpoint before it is back.
    WEBHOOK_DISABLE_AFTER_FAILURES: "1000",
    WEBHOOK_MAX_ATTEMPTS: "100",
  };
});

afterAll(async () => {
  for (const server of started) await server.stop(5000).catch(() => {});
  await cluster?.drop();
  rmSync(dataDir, { recursive: true, force: true });
});

async function boot(): Promise<ServerProcess> {
  const server = await startServer({ command: [...productCommand(), "serve"], env, label: "webhook-crash" });
  started.push(server);
  return server;
}

async function killHard(server: ServerProcess): Promise<void> {
  server.kill("SIGKILL");
  await server.exited;
}

/** An API key of a new service principal, through the running server's operator socket. */
async function serviceKey(name: string): Promise<{ id: string; headers: Record<string, string> }> {
  const id = `service:${name}-${crypto.randomUUID().slice(0, 8)}`;
  const created = await runCli(["keys", "create", "--principal", id, "--type", "service"], { env });
  if (created.code !== 0) throw new Error(`keys create: ${created.stderr}`);
  return { id, headers: { "x-api-key": created.stdout.trim(), "content-type": "application/json" } };
}

async function call(server: ServerProcess, who: { headers: Record<string, string> }, method: string, path: string, body?: unknown) {
  const response = await fetch(server.url + path, { method, headers: who.headers, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: response.status, body: (await response.json()) as any };
}

/** An endpoint of `owner` for its conversations, and a conversation of `owner` with `member` in it. */
async function setUp(server: ServerProcess, receiver: WebhookReceiver, events: string[]) {
  const [owner, member] = await Promise.all([serviceKey("owner"), serviceKey("member")]);
  const endpoint = await call(server, owner, "POST", "/api/webhooks", { url: receiver.url, events });
  expect(endpoint.status).toBe(201);
  const conversation = await call(server, owner, "POST", "/api/conversations", { type: "group", name: "crash" });
  expect(conversation.status).toBe(201);
  return { owner, member, secret: endpoint.body.secret as string, conversationId: conversation.body.id as string };
}

/** Stops the receiver; `back()` starts one on the same address. */
function down(receiver: WebhookReceiver): { back(): WebhookReceiver } {
  const port = Number(new URL(receiver.url).port);
  receiver.stop();
  return { back: () => startWebhookReceiver({ port }) };
}

test("kill -9 right after a participant was added: participant.added is delivered after the restart", async () => {
  const first = await boot();
  const receiver = startWebhookReceiver();
  const { owner, secret, conversationId } = await setUp(first, receiver, ["participant.added"]);
  const member = await serviceKey("added");
  const receiverDown = down(receiver);

  // On PostgreSQL nothing can be written into the outbox for half a second: an insert after commit would
  // still be waiting when the 201 arrives and the process dies. Written with the participant, it holds
  // the 201 back until the table is free, so the row is committed once the answer is there.
  let unlock = () => {};
  let locked: Promise<unknown> = Promise.resolve();
  let blocker: postgres.Sql | undefined;
  if (cluster) {
    blocker = postgres(cluster.url, { max: 1, onnotice: () => {} });
    const held = new Promise<void>((resolve) => (unlock = resolve));
    let lockTaken = () => {};
    const taken = new Promise<void>((resolve) => (lockTaken = resolve));
    locked = blocker.begin(async (tx) => {
      await tx`lock table webhook_deliveries in share mode`;
      lockTaken();
      await held;
    });
    await taken;
    setTimeout(() => unlock(), 500);
  }
  try {
    const added = await call(first, owner, "POST", `/api/conversations/${conversationId}/participants`, { userId: member.id, userType: "service" });
    await killHard(first);
    expect(added.status).toBe(201);
  } finally {
    unlock();
    await locked;
    await blocker?.end({ timeout: 5 });
  }

  const again = receiverDown.back();
  try {
    await boot();
    const [delivered] = await again.waitFor(1, (r) => r.status === 200 && r.payload.data.user_id === member.id, 30_000);
    expect(again.verify(delivered, secret)).toMatchObject({ type: "participant.added", data: { conversation_id: conversationId, user_id: member.id } });
  } finally {
    again.stop();
    await started.pop()?.stop(5000);
  }
});

test("kill -9 right after 200 sends while the receiver is down: all 200 arrive after the restart, in order, signed", async () => {
  const first = await boot();
  const receiver = startWebhookReceiver();
  const { member, owner, secret, conversationId } = await setUp(first, receiver, ["message.created"]);
  const joined = await call(first, owner, "POST", `/api/conversations/${conversationId}/participants`, { userId: member.id, userType: "service" });
  expect(joined.status).toBe(201);
  const receiverDown = down(receiver);

  // Four sends in flight at a time: answers from different pooled connections may come back out of order.
  const path = `/api/conversations/${conversationId}/messages`;
  let next = 1;
  const sent: string[] = [];
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (next <= 200) {
        const n = next++;
        const result = await call(first, member, "POST", path, { content: `m${n}` });
        if (result.status !== 201) throw new Error(`send ${n}: ${result.status} ${JSON.stringify(result.body)}`);
        sent.push(result.body.id);
      }
    }),
  );
  await killHard(first);

  const again = receiverDown.back();
  try {
    await boot();
    const ours = (r: ReceivedWebhook) => r.payload.data?.conversation_id === conversationId;
    const delivered = (r: ReceivedWebhook) => ours(r) && r.status === 200;
    const deadline = Date.now() + 60_000;
    while (new Set(again.received.filter(delivered).map((r) => r.payload.data.id)).size < 200 && Date.now() < deadline) await Bun.sleep(50);
    await Bun.sleep(300);
    const requests = again.received.filter(ours);
    for (const request of requests) expect(again.verify(request, secret)).toEqual(request.payload);
    const arrived = requests.filter(delivered);
    expect(new Set(arrived.map((r) => r.payload.data.id))).toEqual(new Set(sent));
    // A duplicate is the same delivery again: one webhook-id per message.
    const ids = new Map<string, Set<string>>();
    for (const request of requests) ids.set(request.payload.data.id, (ids.get(request.payload.data.id) ?? new Set()).add(request.id));
    expect([...ids.values()].filter((set) => set.size !== 1)).toEqual([]);
    // In sequence order; a duplicate can only repeat the one before it.
    const sequences = arrived.map((r) => r.payload.data.sequence as number).filter((s, i, all) => i === 0 || s !== all[i - 1]);
    expect(sequences).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
  } finally {
    again.stop();
    await started.pop()?.stop(5000);
  }
});
