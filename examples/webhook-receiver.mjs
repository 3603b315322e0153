#!/usr/bin/env node
/**
 * Webhook receiver: an HTTP endpoint that accepts symbia-messaging's webhook deliveries only when their
 * Standard Webhooks signature verifies, and prints each event. Register it first (the secret is shown
 * once) and start it with that secret:
 *
 *   curl -s -X POST "$SYMBIA_URL/api/webhooks" -H "X-API-Key: $SYMBIA_API_KEY" \
 *        -H 'content-type: application/json' -d '{"url": "https://agent.example/hooks"}'   # → {…, "secret": "whsec_…"}
 *   WEBHOOK_SECRET=whsec_… PORT=8080 node examples/webhook-receiver.mjs
 *
 * Answer 2xx quickly: the server retries anything else (with back-off; 410 disables the endpoint). A
 * delivery may come twice (at least once): `webhook-id` is stable across retries, so deduplicate on it.
 */
import { createServer } from "node:http";
import { Webhook } from "standardwebhooks";

const secret = process.env.WEBHOOK_SECRET;
const port = Number(process.env.PORT ?? 8080);
if (!secret) {
  console.error("webhook-receiver: set WEBHOOK_SECRET (the whsec_… secret answered when the endpoint was registered)");
  process.exit(2);
}
const verifier = new Webhook(secret);
const seen = new Set();

const server = createServer((request, response) => {
  const chunks = [];
  request.on("data", (chunk) => chunks.push(chunk));
  request.on("end", () => {
    const body = Buffer.concat(chunks).toString("utf8");
    let event;
    try {
      event = verifier.verify(body, {
        "webhook-id": request.headers["webhook-id"],
        "webhook-timestamp": request.headers["webhook-timestamp"],
        "webhook-signature": request.headers["webhook-signature"],
      });
    } catch (error) {
      console.log(`webhook-receiver: refused a delivery that does not verify (${error.message})`);
      response.writeHead(401).end();
      return;
    }
    const id = request.headers["webhook-id"];
    if (!seen.has(id)) {
      seen.add(id);
      const summary = event.type === "message.created" ? `${event.data.sender_id}: ${event.data.content}` : JSON.stringify(event.data).slice(0, 120);
      console.log(`webhook-receiver: ${event.type} (${id}) ${summary}`);
    }
    response.writeHead(204).end();
  });
});
server.listen(port, "127.0.0.1", () => console.log(`webhook-receiver: listening on http://127.0.0.1:${port}`));
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => server.close(() => process.exit(0)));
