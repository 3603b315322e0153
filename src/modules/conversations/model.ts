import { t } from "elysia";
import { Metadata, ParticipantType, PrincipalId } from "../shared-models";

export const CreateConversationBody = t.Object({
  type: t.Union([t.Literal("private"), t.Literal("group")]),
  name: t.Optional(t.String({ maxLength: 200 })),
  description: t.Optional(t.String({ maxLength: 2000 })),
  orgId: t.Optional(t.String({ minLength: 1, maxLength: 255 })),
  metadata: t.Optional(Metadata),
  participants: t.Optional(
    t.Array(t.Object({ userId: PrincipalId, userType: t.Optional(ParticipantType) }), { maxItems: 500 }),
  ),
});

export const UpdateConversationBody = t.Object({
  name: t.Optional(t.String({ minLength: 1, maxLength: 200 })),
  description: t.Optional(t.Union([t.String({ maxLength: 2000 }), t.Null()])),
  metadata: t.Optional(Metadata),
});

export const ListConversationsQuery = t.Object({
  orgId: t.Optional(t.String({ minLength: 1, maxLength: 255 })),
  limit: t.Optional(t.Numeric({ minimum: 1, maximum: 500 })),
  offset: t.Optional(t.Numeric({ minimum: 0 })),
});

export type CreateConversationInput = typeof CreateConversationBody.static;
export type UpdateConversationInput = typeof UpdateConversationBody.static;
