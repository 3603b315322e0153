import { t } from "elysia";
import { ParticipantType, PrincipalId } from "../shared-models";
import { Role } from "../participants/model";

export const AdminListQuery = t.Object({
  orgId: t.Optional(t.String({ minLength: 1, maxLength: 255 })),
  type: t.Optional(t.Union([t.Literal("private"), t.Literal("group")])),
  limit: t.Optional(t.Numeric({ minimum: 1, maximum: 200 })),
  offset: t.Optional(t.Numeric({ minimum: 0 })),
});

export const AdminOrgQuery = t.Object({ orgId: t.Optional(t.String({ minLength: 1, maxLength: 255 })) });
export const AdminUserParams = t.Object({ userId: PrincipalId });
export const AdminAddParticipantBody = t.Object({ userId: PrincipalId, userType: t.Optional(ParticipantType), role: Role });
