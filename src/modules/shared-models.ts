/**
 * TypeBox pieces used by several modules' request schemas (they are also the OpenAPI document).
 */
import { t } from "elysia";

export const Uuid = t.String({ format: "uuid" });
/** Principal ids are opaque strings: users' UUIDs, agents such as `assistant:support`, services. */
export const PrincipalId = t.String({ minLength: 1, maxLength: 255 });
export const ParticipantType = t.Union([t.Literal("user"), t.Literal("agent"), t.Literal("service"), t.Literal("bot")]);
export const Metadata = t.Record(t.String(), t.Unknown());
export const ShortText = (maxLength: number) => t.String({ maxLength });

export const ConversationParams = t.Object({ id: Uuid });
export const ErrorBody = t.Object({ error: t.String(), code: t.String() });
