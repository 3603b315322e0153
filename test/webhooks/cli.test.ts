/**
 * `webhooks create|list|disable|delete` next to a running server (through its admin socket): an endpoint
 * an operator registers for the installation receives events, signed with the secret printed once.
 */
import { afterAll, beforeAll, expect, test, setDefaultTimeout } from "bun:test";
import { runCli, startServerProcess, type ServerProcess } from "../support/process";
import { uniq } from "../support/server";
import { startWebhookReceiver, type WebhookReceiver } from "../support/webhook-receiver";

setDefaultTimeout(60_000);

let server: ServerProcess;
let receiver: WebhookReceiver;
beforeAll(async () => {
  server = await startServerProcess({ WEBHOOK_ALLOW_PRIVATE: "true", WEBHOOK_POLL_MS: "20" });
  receiver = startWebhookReceiver();
});
afterAll(async () => {
  receiver?.stop();
  await server?.stop();
});

const cli = (args: string[]) => runCli(args, { env: server.env });

test("create prints the secret alone; the endpoint receives signed events; list, disable, delete", async () => {
  const created = await cli(["webhooks", "create", "--url", receiver.url, "--installation", "--event", "message.created", "--description", "ops"]);
  expect(created.code).toBe(0);
  const secret = created.stdout.trim();
  expect(secret).toMatch(/^whsec_/);
  const id = /webhook ([0-9a-f-]{36})/.exec(created.stderr)![1];

  const key = (await cli(["keys", "create", "--principal", `service:${uniq()}`, "--type", "service"])).stdout.trim();
  const headers = { "x-api-key": key, "content-type": "application/json" };
  const conversation = (await (await fetch(`${server.url}/api/conversations`, { method: "POST", headers, body: JSON.stringify({ type: "group", name: "ops" }) })).json()) as { id: string };
  // The server notices an endpoint registered outside its API on its next check, within 5 s.
  await Bun.sleep(5_500);
  const sent = await fetch(`${server.url}/api/conversations/${conversation.id}/messages`, { method: "POST", headers, body: JSON.stringify({ content: "for the operator" }) });
  expect(sent.status).toBe(201);
  const [delivered] = await receiver.waitFor(1, () => true, 15_000);
  expect(receiver.verify(delivered, secret)).toMatchObject({ type: "message.created", data: { content: "for the operator" } });

  const listed = await cli(["webhooks", "list", "--json"]);
  // On a shared test database others' endpoints are listed too.
  const mine = (stdout: string) => (JSON.parse(stdout) as { id: string }[]).find((h) => h.id === id);
  expect(mine(listed.stdout)).toMatchObject({ id, scope: "installation", events: ["message.created"], enabled: true, description: "ops" });
  expect(listed.stdout).not.toContain(secret);
  expect((await cli(["webhooks", "disable", id])).stdout.trim()).toBe(`${id} disabled`);
  expect(mine((await cli(["webhooks", "list", "--json"])).stdout)).toMatchObject({ enabled: false, disabled_reason: "disabled by an operator" });
  expect((await cli(["webhooks", "delete", id])).stdout.trim()).toBe(`${id} deleted`);
  const again = await cli(["webhooks", "delete", id]);
  expect(again.code).not.toBe(0);
  const bad = await cli(["webhooks", "create", "--url", receiver.url]);
  expect(bad.code).not.toBe(0);
  expect(bad.stderr).toContain("exactly one of");
});
