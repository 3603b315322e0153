import { t } from "elysia";
import { Metadata, Priority, QueryInteger, Text, Uuid } from "../shared-models";


/** Content size is checked in bytes by the domain (413), not here (which would answer 400). */
export const SendMessageBody = t.Object({
  id: t.Optional(Uuid),
  content: t.String(),
  contentType: t.Optional(Text({ maxLength: 255 })),
  replyTo: t.Optional(Uuid),
  metadata: t.Optional(Metadata),
  runId: t.Optional(Text({ maxLength: 255 })),
  traceId: t.Optional(Text({ maxLength: 255 })),
  priority: t.Optional(Priority),
  interruptible: t.Optional(t.Boolean()),
  preemptedBy: t.Optional(Uuid),
});

export const EditMessageBody = t.Object({
  content: t.String(),
  contentType: t.Optional(Text({ maxLength: 255 })),
});

/** A sequence number or an ISO-8601 time. */
const Cursor = t.String({ minLength: 1, maxLength: 64 });

export const ListMessagesQuery = t.Object({
  limit: t.Optional(QueryInteger(1, 200)),
  before: t.Optional(Cursor),
  after: t.Optional(Cursor),
});

export const MessageParams = t.Object({ id: Uuid, mid: Uuid });

export type SendMessageInput = typeof SendMessageBody.static;
export type EditMessageInput = typeof EditMessageBody.static;
