import { t } from "elysia";
import { CONTROL_EVENTS } from "../../domain/control-events";
import { Metadata, ParticipantType, Priority, PrincipalId, Text, Uuid } from "../shared-models";

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
  /** The run the event applies to; without it, every run that can take it (docs/runs.md). */
  runId: t.Optional(Text({ minLength: 1, maxLength: 255 })),
  /** stream.priority: the run's new priority (`metadata.priority` is read too). */
  priority: t.Optional(Priority),
  traceId: t.Optional(Text({ maxLength: 255 })),
  metadata: t.Optional(Metadata),
});

export type SendControlInput = typeof SendControlBody.static;
