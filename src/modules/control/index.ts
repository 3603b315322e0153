/**
 * REST route of control events: POST /api/conversations/:id/control
 */
import { Elysia } from "elysia";
import { authenticated } from "../../http/context";
import type { Services } from "../../services";
import { ConversationParams, jsonBodyOnly, Message } from "../shared-models";
import { SendControlBody } from "./model";
import { sendControl } from "./service";

export function controlModule(services: Services) {
  return new Elysia({ prefix: "/api/conversations/:id", tags: ["control"] })
    .use(authenticated)
    .onParse(jsonBodyOnly)
    .post(
      "/control",
      async ({ principal, params, body, scope, requestId }) => {
        const stored = await sendControl(services, principal, params.id, body, scope);
        return new Response(stored.json, { status: 201, headers: { "content-type": "application/json", "x-request-id": requestId } });
      },
      {
        params: ConversationParams,
        body: SendControlBody,
        response: { 201: Message },
        detail: { summary: "Send a control event (cap:messaging.interrupt or cap:messaging.route)" },
      },
    );
}
