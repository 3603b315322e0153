/**
 * REST routes of messages: /api/conversations/:id/messages[...]
 */
import { Elysia, t } from "elysia";
import { authenticated } from "../../http/context";
import type { Services } from "../../services";
import { ConversationParams, jsonBodyOnly } from "../shared-models";
import { AppendBody, EditMessageBody, FinishBody, ListMessagesQuery, MessageParams, SendMessageBody } from "./model";
import { deleteMessage, editMessage, getMessage, listMessages, messageHistory, sendMessage } from "./service";

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
        return jsonResponse(stored.json, stored.replayed ? 200 : 201, requestId);
      },
      {
        params: ConversationParams,
        body: SendMessageBody,
        detail: { summary: "Send a message (201; 200 when a client id is sent again)" },
      },
    )
    .get("/:mid", ({ principal, params }) => getMessage(services, principal, params.id, params.mid), {
      params: MessageParams,
      detail: { summary: "One message; a streaming message with its content so far" },
    })
    .post(
      "/:mid/append",
      ({ principal, params, body }) => services.streams.append(principal, params.mid, body.delta, params.id),
      {
        params: MessageParams,
        body: AppendBody,
        detail: { summary: "Append a delta to a streaming message (sender only, while streaming); answers the new length" },
      },
    )
    .post(
      "/:mid/finish",
      async ({ principal, params, body, requestId }) => {
        const ended = await services.streams.finish(principal, params.mid, body.content, params.id);
        return jsonResponse(ended.json, 200, requestId);
      },
      {
        params: MessageParams,
        body: FinishBody,
        detail: { summary: "Finish a streaming message (complete); `content` replaces what was appended" },
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
