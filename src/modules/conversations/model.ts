import { t } from "elysia";
import { Metadata, OrgId, PageOffset, ParticipantType, PrincipalId, QueryInteger, Text } from "../shared-models";

export const CreateConversationBody = t.Object({
  type: t.Union([t.Literal("private"), t.Literal("group")]),
  name: t.Optional(Text({ maxLength: 200 })),
  description: t.Optional(Text({ maxLength: 2000 })),
  orgId: t.Optional(OrgId),
  metadata: t.Optional(Metadata),
  participants: t.Optional(
    t.Array(t.Object({ userId: PrincipalId, userType: t.Optional(ParticipantType) }), { maxItems: 500 }),
  ),
});

export const UpdateConversationBody = t.Object({
  name: t.Optional(Text({ minLength: 1, maxLength: 200 })),
  description: t.Optional(t.Union([Text({ maxLength: 2000 }), t.Null()])),
  metadata: t.Optional(Metadata),
});

export const ListConversationsQuery = t.Object({
  orgId: t.Optional(OrgId),
  limit: t.Optional(QueryInteger(1, 500)),
  offset: t.Optional(PageOffset),
});

export type CreateConversationInput = typeof CreateConversationBody.static;
export type UpdateConversationInput = typeof UpdateConversationBody.static;
