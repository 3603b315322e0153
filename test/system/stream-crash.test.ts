/**
 * A server killed with SIGKILL in the middle of a stream: after a restart on the same data (directory or
 * PostgreSQL), the content written by the last flush is there and the message is marked interrupted.
 */
import { afterAll, expect, test } from "bun:test";
import { callAs as call, restartableServer } from "../support/restartable-server";
import { useEndToEndTimeout } from "../support/timeout";

useEndToEndTimeout();

const servers = restartableServer("stream-crash", {
  STREAM_FLUSH_MS: "100",
  // The default idle timeout (5 min): on PostgreSQL the restarted instance ends the stream because its
  // holder is not among the live instances, once it knows them (several seconds after its start).
});
afterAll(() => servers.cleanUp());
const boot = () => servers.boot();

test("kill -9 during a stream: the flushed content survives and the message is interrupted at the next start", async () => {
  const first = await boot();
  const token = await servers.signIn(first);
  expect(token).toBeString();
  const conversation = await call(first, token, "POST", "/api/conversations", { type: "group", name: "crash" });
  expect(conversation.status).toBe(201);
  const base = `/api/conversations/${conversation.body.id}/messages`;
  const created = await call(first, token, "POST", base, { content: "", streaming: true });
  expect(created.status).toBe(201);
  const mid = created.body.id;
  for (let i = 0; i < 20; i++) expect((await call(first, token, "POST", `${base}/${mid}/append`, { delta: `flushed ${i}. ` })).status).toBe(200);
  const flushed = (await call(first, token, "GET", `${base}/${mid}`)).body.content as string;
  await Bun.sleep(400);
  // Appended just before the kill: not flushed yet, and may be lost.
  await call(first, token, "POST", `${base}/${mid}/append`, { delta: "last words" });
  first.kill("SIGKILL");
  await first.exited;

  const second = await boot();
  let message: any;
  const deadline = Date.now() + 25_000;
  do {
    message = (await call(second, token, "GET", `${base}/${mid}`)).body;
    if (message.stream_state === "interrupted") break;
    await Bun.sleep(200);
  } while (Date.now() < deadline);
  expect(message.stream_state).toBe("interrupted");
  expect(message.content.startsWith(flushed)).toBe(true);
  const refused = await call(second, token, "POST", `${base}/${mid}/append`, { delta: "more" });
  expect(refused.status).toBe(409);
  expect(refused.body.code).toBe("stream_closed");
});
