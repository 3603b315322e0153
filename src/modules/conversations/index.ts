/**
 * REST routes of conversations: /api/conversations[/:id]
 */
import { Elysia } from "elysia";
import { authenticated } from "../../http/context";
import { setOffsetPageHeaders } from "../../http/paging";
import type { Services } from "../../services";
import { Conversation, queryIntegers, ConversationParams, ConversationSummaryList, ConversationWithParticipants, jsonBodyOnly } from "../shared-models";
import { CreateConversationBody, ListConversationsQuery, UpdateConversationBody } from "./model";
import {
  createConversation,
  deleteConversation,
  getConversation,
  listConversations,
  updateConversation,
} from "./service";

export function conversationsModule(services: Services) {
  return new Elysia({ prefix: "/api/conversations", tags: ["conversations"] })
    .use(authenticated)
    .onParse(jsonBodyOnly)
    .get(
      "",
      async ({ principal, query, scope, request, set }) => {
        const page = await listConversations(services, principal, query, scope);
        setOffsetPageHeaders(set.headers, request, services.config.publicUrl, { ...page, returned: page.items.length });
        return page.items;
      },
      {
      query: ListConversationsQuery,
      transform: queryIntegers(ListConversationsQuery),
      response: { 200: ConversationSummaryList },
      detail: {
        summary: "Conversations the caller participates in, newest activity first",
        description:
          "One page (`limit` 1..500, default 100, from `offset`); `Link: rel=\"next\"` names the next page and `X-Total-Count` the total. " +
          "Each carries the caller's `last_read_at` and `unread_count`: others' messages since then (control events and deleted messages left out), counted up to 100.",
      },
    })
    .post(
      "",
      async ({ principal, body, scope, set }) => {
        const conversation = await createConversation(services, principal, body, scope);
        set.status = 201;
        return conversation;
      },
      { body: CreateConversationBody, response: { 201: ConversationWithParticipants }, detail: { summary: "Create a conversation; the caller becomes its owner" } },
    )
    .get("/:id", ({ principal, params }) => getConversation(services, principal, params.id), {
      params: ConversationParams,
      response: { 200: ConversationWithParticipants },
      detail: { summary: "A conversation with its participants" },
    })
    .patch("/:id", ({ principal, params, body }) => updateConversation(services, principal, params.id, body), {
      params: ConversationParams,
      body: UpdateConversationBody,
      response: { 200: Conversation },
      detail: { summary: "Update name, description or metadata (owner, admin)" },
    })
    .delete(
      "/:id",
      async ({ principal, params, set }) => {
        await deleteConversation(services, principal, params.id);
        set.status = 204;
      },
      { params: ConversationParams, detail: { summary: "Delete a conversation with its messages (owner)" } },
    );
}
