/**
 * REST routes of messages: /api/conversations/:id/messages[...]
 */
import { Elysia, t } from "elysia";
import { authenticated } from "../../http/context";
import { messagesSent } from "../../metrics/registry";
import type { Services } from "../../services";
import { ConversationParams, jsonBodyOnly } from "../shared-models";
import { EditMessageBody, ListMessagesQuery, MessageParams, SendMessageBody } from "./model";
import { deleteMessage, editMessage, listMessages, messageHistory, sendMessage } from "./service";

/** The message was serialised once by the domain; send those bytes as they are. */
function jsonResponse(json: string, status: number, requestId: string): Response {
  return new Response(json, { status, headers: { "content-type": "application/json", "x-request-id": requestId } });
}

export function messagesModule(services: Services) {
  return new Elysia({ prefix: "/api/conversations/:id/messages", tags: ["messages"] })
    .use(authenticated)
    .onParse(jsonBodyOnly)
    .get("", ({ principal, params, query }) => listMessages(services, principal, params.id, query), {
      params: ConversationParams,
      query: ListMessagesQuery,
      detail: { summary: "Messages in ascending sequence; `before`/`after` take a sequence or an ISO time" },
    })
    .post(
      "",
      async ({ principal, params, body, scope, requestId }) => {
        const stored = await sendMessage(services, principal, params.id, body, scope);
        if (!stored.replayed) messagesSent.rest.inc();
        return jsonResponse(stored.json, stored.replayed ? 200 : 201, requestId);
      },
      {
        params: ConversationParams,
        body: SendMessageBody,
        detail: { summary: "Send a message (201; 200 when a client id is sent again)" },
      },
    )
    .patch(
      "/:mid",
      async ({ principal, params, body, requestId }) => {
        const stored = await editMessage(services, principal, { messageId: params.mid, conversationId: params.id }, body);
        return jsonResponse(stored.json, 200, requestId);
      },
      { params: MessageParams, body: EditMessageBody, detail: { summary: "Edit a message (sender only); the old content is kept" } },
    )
    .delete(
      "/:mid",
      async ({ principal, params, set }) => {
        await deleteMessage(services, principal, { messageId: params.mid, conversationId: params.id });
        set.status = 204;
      },
      { params: MessageParams, detail: { summary: "Soft-delete a message (sender, owner or admin)" } },
    )
    .get("/:mid/history", ({ principal, params }) => messageHistory(services, principal, params.id, params.mid), {
      params: MessageParams,
      detail: { summary: "Every version of a message with its time and editor" },
    });
}
