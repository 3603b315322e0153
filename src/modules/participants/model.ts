import { t } from "elysia";
import { ParticipantType, PrincipalId, Uuid } from "../shared-models";

export const Role = t.Union([t.Literal("owner"), t.Literal("admin"), t.Literal("member")]);
export const AddParticipantBody = t.Object({ userId: PrincipalId, userType: t.Optional(ParticipantType) });
export const ChangeRoleBody = t.Object({ role: Role });
export const ParticipantParams = t.Object({ id: Uuid, userId: PrincipalId });
