/**
 * REST routes of the admin API: /api/admin/...
 */
import { Elysia } from "elysia";
import { authenticated } from "../../http/context";
import { setOffsetPageHeaders } from "../../http/paging";
import type { Services } from "../../services";
import { ConversationList, queryIntegers, ConversationParams, jsonBodyOnly, Participant } from "../shared-models";
import { ParticipantParams } from "../participants/model";
import {
  AdminAddParticipantBody,
  AdminConversationDetail,
  AdminConversationList,
  AdminListQuery,
  AdminOrgQuery,
  AdminStats,
  AdminUserConversationsQuery,
  AdminUserParams,
} from "./model";
import {
  adminAddParticipant,
  adminConversationDetail,
  adminDeleteConversation,
  adminListConversations,
  adminRemoveParticipant,
  adminStats,
  adminUserConversations,
} from "./service";

export function adminModule(services: Services) {
  return new Elysia({ prefix: "/api/admin", tags: ["admin"] })
    .use(authenticated)
    .onParse(jsonBodyOnly)
    .get(
      "/conversations",
      async ({ principal, query, scope, request, set }) => {
        const page = await adminListConversations(services, principal, query, scope);
        setOffsetPageHeaders(set.headers, request, services.config.publicUrl, { ...page, returned: page.items.length });
        return page;
      },
      {
      query: AdminListQuery,
      transform: queryIntegers(AdminListQuery),
      response: { 200: AdminConversationList },
      detail: { summary: "All conversations, paginated (`limit` 1..200, default 50), filterable by org and type" },
    })
    .get("/conversations/:id", ({ principal, params }) => adminConversationDetail(services, principal, params.id), {
      params: ConversationParams,
      response: { 200: AdminConversationDetail },
      detail: { summary: "A conversation with its participants and last 50 messages" },
    })
    .delete(
      "/conversations/:id",
      async ({ principal, params, set }) => {
        await adminDeleteConversation(services, principal, params.id);
        set.status = 204;
      },
      { params: ConversationParams, detail: { summary: "Delete a conversation" } },
    )
    .get(
      "/users/:userId/conversations",
      async ({ principal, params, query, scope, request, set }) => {
        const page = await adminUserConversations(services, principal, params.userId, query, scope);
        setOffsetPageHeaders(set.headers, request, services.config.publicUrl, { ...page, returned: page.items.length });
        return page.items;
      },
      {
        params: AdminUserParams,
        query: AdminUserConversationsQuery,
        transform: queryIntegers(AdminUserConversationsQuery),
        response: { 200: ConversationList },
        detail: { summary: "Conversations a principal participates in, paginated (`limit` 1..500, default 100)" },
      },
    )
    .post(
      "/conversations/:id/participants",
      async ({ principal, params, body, set }) => {
        const participant = await adminAddParticipant(services, principal, params.id, body);
        set.status = 201;
        return participant;
      },
      { params: ConversationParams, body: AdminAddParticipantBody, response: { 201: Participant }, detail: { summary: "Add a participant with a role" } },
    )
    .delete(
      "/conversations/:id/participants/:userId",
      async ({ principal, params, set }) => {
        await adminRemoveParticipant(services, principal, params.id, params.userId);
        set.status = 204;
      },
      { params: ParticipantParams, detail: { summary: "Remove a participant (not the owner)" } },
    )
    .get("/stats", ({ principal, query, scope }) => adminStats(services, principal, query, scope), {
      query: AdminOrgQuery,
      response: { 200: AdminStats },
      detail: { summary: "Totals and conversations active in the last 24 hours" },
    });
}
