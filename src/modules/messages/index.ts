/**
 * REST routes of messages: /api/conversations/:id/messages[...]
 */
import { Elysia, t } from "elysia";
import { authenticated } from "../../http/context";
import { setCursorPageHeaders } from "../../http/paging";
import { messagesSent } from "../../metrics/registry";
import type { Services } from "../../services";
import { ConversationParams, jsonBodyOnly, Message, queryIntegers } from "../shared-models";
import { EditMessageBody, ListMessagesQuery, MessageHistory, MessageList, MessageParams, SendMessageBody } from "./model";
import { deleteMessage, editMessage, listMessages, messageHistory, sendMessage } from "./service";

/** The message was serialised once by the domain; send those bytes as they are. */
function jsonResponse(json: string, status: number, requestId: string): Response {
  return new Response(json, { status, headers: { "content-type": "application/json", "x-request-id": requestId } });
}

export function messagesModule(services: Services) {
  return new Elysia({ prefix: "/api/conversations/:id/messages", tags: ["messages"] })
    .use(authenticated)
    .onParse(jsonBodyOnly)
    .get(
      "",
      async ({ principal, params, query, request, set }) => {
        // One more than asked tells whether a next page exists; it is left out of this one.
        const limit = query.limit ?? 50;
        const page = await listMessages(services, principal, params.id, { ...query, limit: limit + 1 });
        const newestFirst = query.before !== undefined || query.after === undefined;
        const more = page.length > limit;
        if (more) newestFirst ? page.shift() : page.pop();
        const next: Record<string, string> | undefined = !more
          ? undefined
          : newestFirst
            ? { before: String(page[0].sequence) }
            : { after: String(page[page.length - 1].sequence) };
        setCursorPageHeaders(set.headers, request, services.config.publicUrl, next && { ...next, limit: String(limit) });
        return page;
      },
      {
      params: ConversationParams,
      query: ListMessagesQuery,
      transform: queryIntegers(ListMessagesQuery),
      response: { 200: MessageList },
      detail: {
        summary: "Messages in ascending sequence; `before`/`after` take a sequence or an ISO time",
        description:
          "Without a cursor, or with `before`, the newest `limit` (default 50) older than it; with only `after`, the oldest `limit` after it. `Link: rel=\"next\"` names the next page in that direction while there is one.",
      },
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
        response: { 200: Message, 201: Message },
        detail: { summary: "Send a message (201; 200 when a client id is sent again)" },
      },
    )
    .patch(
      "/:mid",
      async ({ principal, params, body, requestId }) => {
        const stored = await editMessage(services, principal, { messageId: params.mid, conversationId: params.id }, body);
        return jsonResponse(stored.json, 200, requestId);
      },
      { params: MessageParams, body: EditMessageBody, response: { 200: Message }, detail: { summary: "Edit a message (sender only); the old content is kept" } },
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
      response: { 200: MessageHistory },
      detail: { summary: "Every version of a message with its time and editor" },
    });
}
