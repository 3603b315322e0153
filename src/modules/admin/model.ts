import { t } from "elysia";
import { OrgId, PageOffset, ParticipantType, PrincipalId, QueryInteger } from "../shared-models";
import { Role } from "../participants/model";

export const AdminListQuery = t.Object({
  orgId: t.Optional(OrgId),
  type: t.Optional(t.Union([t.Literal("private"), t.Literal("group")])),
  limit: t.Optional(QueryInteger(1, 200)),
  offset: t.Optional(PageOffset),
});

export const AdminOrgQuery = t.Object({ orgId: t.Optional(OrgId) });
export const AdminUserParams = t.Object({ userId: PrincipalId });
export const AdminAddParticipantBody = t.Object({ userId: PrincipalId, userType: t.Optional(ParticipantType), role: Role });
