import { t } from "elysia";
import { Conversation, Message, OrgId, PageOffset, Participant, ParticipantType, PrincipalId, QueryInteger } from "../shared-models";
import { Role } from "../participants/model";

export const AdminListQuery = t.Object({
  orgId: t.Optional(OrgId),
  type: t.Optional(t.Union([t.Literal("private"), t.Literal("group")])),
  limit: t.Optional(QueryInteger(1, 200)),
  offset: t.Optional(PageOffset),
});

export const AdminOrgQuery = t.Object({ orgId: t.Optional(OrgId) });
export const AdminUserConversationsQuery = t.Object({
  orgId: t.Optional(OrgId),
  limit: t.Optional(QueryInteger(1, 500)),
  offset: t.Optional(PageOffset),
});
export const AdminUserParams = t.Object({ userId: PrincipalId });
export const AdminAddParticipantBody = t.Object({ userId: PrincipalId, userType: t.Optional(ParticipantType), role: Role });

export const AdminConversationList = t.Object(
  {
    items: t.Array(Conversation),
    limit: t.Integer(),
    offset: t.Integer(),
    total: t.Integer({ description: "Conversations matching the filter, all pages together" }),
  },
  { title: "AdminConversationList", description: "A page of conversations" },
);

export const AdminConversationDetail = t.Object(
  {
    conversation: Conversation,
    participants: t.Array(Participant),
    recentMessages: t.Array(Message, { description: "The last 50 messages, ascending sequence" }),
  },
  { title: "AdminConversationDetail", description: "A conversation with its participants and last messages" },
);

export const AdminStats = t.Object(
  {
    totalConversations: t.Integer(),
    totalMessages: t.Integer(),
    uniqueParticipants: t.Integer(),
    activeConversations24h: t.Integer(),
  },
  { title: "AdminStats", description: "Totals" },
);
