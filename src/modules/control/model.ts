import { t } from "elysia";
import { CONTROL_EVENTS } from "../../domain/control-events";
import { Metadata, ParticipantType, PrincipalId, Text, Uuid } from "../shared-models";

export const ControlEventName = t.Union(CONTROL_EVENTS.map((event) => t.Literal(event)));

/** A participant id (UUID), or the principal it belongs to. */
export const ControlTarget = t.Union([
  PrincipalId,
  t.Object({ principalId: PrincipalId, principalType: t.Optional(ParticipantType) }),
]);

export const SendControlBody = t.Object({
  event: ControlEventName,
  target: t.Optional(ControlTarget),
  reason: t.Optional(Text({ maxLength: 2000 })),
  preemptedBy: t.Optional(Uuid),
  runId: t.Optional(Text({ maxLength: 255 })),
  traceId: t.Optional(Text({ maxLength: 255 })),
  metadata: t.Optional(Metadata),
});

export type SendControlInput = typeof SendControlBody.static;
