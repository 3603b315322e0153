/**
 * A webhook receiver on loopback for the tests: records every request, answers what the test says
 * (200 by default), and verifies Standard Webhooks signatures with the `standardwebhooks` package.
 */
import { Webhook } from "standardwebhooks";

export interface ReceivedWebhook {
  id: string;
  timestamp: string;
  signature: string;
  headers: Record<string, string>;
  body: string;
  payload: { type: string; timestamp: string; data: any };
  receivedAt: number;
  /** What the receiver answered. */
  status?: number;
}

export interface WebhookReceiver {
  url: string;
  received: ReceivedWebhook[];
  /** Decides the answer to each request; the default answers 200. */
  respond: (request: ReceivedWebhook, index: number) => Response | Promise<Response>;
  /** Verifies a request's signature with `secret`; throws when it does not verify. */
  verify(request: ReceivedWebhook, secret: string): unknown;
  /** Waits until `count` requests (matching `filter`) arrived. */
  waitFor(count: number, filter?: (request: ReceivedWebhook) => boolean, timeoutMs?: number): Promise<ReceivedWebhook[]>;
  /** Requests of that type that were answered 2xx. */
  of(type: string): ReceivedWebhook[];
  stop(): void;
}

/** `port`: to come back where a stopped receiver was (endpoints keep their URL). */
export function startWebhookReceiver(options: { port?: number } = {}): WebhookReceiver {
  const receiver: WebhookReceiver = {
    url: "",
    received: [],
    respond: () => new Response("ok"),
    verify(request, secret) {
      return new Webhook(secret).verify(request.body, {
        "webhook-id": request.id,
        "webhook-timestamp": request.timestamp,
        "webhook-signature": request.signature,
      });
    },
    async waitFor(count, filter = () => true, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const matching = receiver.received.filter(filter);
        if (matching.length >= count) return matching;
        if (Date.now() > deadline) {
          throw new Error(`${matching.length} of ${count} webhooks within ${timeoutMs} ms; got ${receiver.received.map((r) => r.payload.type).join(", ")}`);
        }
        await Bun.sleep(10);
      }
    },
    of(type) {
      return receiver.received.filter((r) => r.payload.type === type && r.status !== undefined && r.status < 300);
    },
    stop() {
      server.stop(true);
    },
  };
  const server = Bun.serve({
    port: options.port ?? 0,
    hostname: "127.0.0.1",
    async fetch(request) {
      const body = await request.text();
      const headers = Object.fromEntries(request.headers.entries());
      const received: ReceivedWebhook = {
        id: headers["webhook-id"] ?? "",
        timestamp: headers["webhook-timestamp"] ?? "",
        signature: headers["webhook-signature"] ?? "",
        headers,
        body,
        payload: JSON.parse(body),
        receivedAt: Date.now(),
      };
      const index = receiver.received.push(received) - 1;
      const response = await receiver.respond(received, index);
      received.status = response.status;
      return response;
    },
  });
  receiver.url = `http://127.0.0.1:${server.port}/hook`;
  return receiver;
}
