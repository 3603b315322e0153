/**
 * REST routes of participants: join, leave, add, remove, change role.
 */
import { Elysia } from "elysia";
import { authenticated } from "../../http/context";
import type { Services } from "../../services";
import { ConversationParams, jsonBodyOnly, Participant } from "../shared-models";
import { AddParticipantBody, ChangeRoleBody, ParticipantParams } from "./model";
import { addParticipant, changeRole, joinConversation, leaveConversation, removeParticipant } from "./service";

export function participantsModule(services: Services) {
  return new Elysia({ prefix: "/api/conversations/:id", tags: ["participants"] })
    .use(authenticated)
    .onParse(jsonBodyOnly)
    .post(
      "/join",
      async ({ principal, params, set }) => {
        const joined = await joinConversation(services, principal, params.id);
        set.status = joined.created ? 201 : 200;
        return joined.participant;
      },
      { params: ConversationParams, response: { 200: Participant, 201: Participant }, detail: { summary: "Join a group conversation of your organization (201; 200 if already in)" } },
    )
    .post(
      "/leave",
      async ({ principal, params, set }) => {
        await leaveConversation(services, principal, params.id);
        set.status = 204;
      },
      { params: ConversationParams, detail: { summary: "Leave a conversation (not the owner)" } },
    )
    .post(
      "/participants",
      async ({ principal, params, body, set }) => {
        const participant = await addParticipant(services, principal, params.id, body);
        set.status = 201;
        return participant;
      },
      { params: ConversationParams, body: AddParticipantBody, response: { 201: Participant }, detail: { summary: "Add a participant (owner, admin)" } },
    )
    .delete(
      "/participants/:userId",
      async ({ principal, params, set }) => {
        await removeParticipant(services, principal, params.id, params.userId);
        set.status = 204;
      },
      { params: ParticipantParams, detail: { summary: "Remove a participant (owner, admin); the owner cannot be removed" } },
    )
    .patch(
      "/participants/:userId",
      ({ principal, params, body }) => changeRole(services, principal, params.id, params.userId, body.role),
      { params: ParticipantParams, body: ChangeRoleBody, response: { 200: Participant }, detail: { summary: "Change a participant's role (owner); role owner transfers ownership" } },
    );
}
