import { t } from "elysia";
import { Metadata, PageOffset, Priority, QueryInteger, Text, Uuid } from "../shared-models";

/** Any string of 1..255 characters, as messages' runId. */
export const RunId = Text({ minLength: 1, maxLength: 255 });

export const StartRunBody = t.Object({
  runId: t.Optional(RunId),
  priority: t.Optional(Priority),
  interruptible: t.Optional(t.Boolean()),
  metadata: t.Optional(Metadata),
});

export const ListRunsQuery = t.Object({
  state: t.Optional(t.Union([t.Literal("active"), t.Literal("paused"), t.Literal("preempted"), t.Literal("ended")])),
  limit: t.Optional(QueryInteger(1, 200)),
  offset: t.Optional(PageOffset),
});

export const RunParams = t.Object({ id: Uuid, runId: RunId });

export const FailRunBody = t.Object({ reason: t.Optional(Text({ maxLength: 2000 })) });

export type StartRunBodyInput = typeof StartRunBody.static;
