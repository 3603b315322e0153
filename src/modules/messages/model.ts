import { t } from "elysia";
import { Message, Metadata, Priority, QueryInteger, Text, Uuid } from "../shared-models";

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
  /** The content follows in appends (docs/streaming.md); content may then be empty. */
  streaming: t.Optional(t.Boolean()),
});

/** Size is checked in bytes by the stream (413). */
export const AppendBody = t.Object({ delta: t.String() });

export const FinishBody = t.Object({ content: t.Optional(t.String()) });

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
export type FinishInput = typeof FinishBody.static;

export const MessageVersion = t.Object(
  {
    version: t.Integer({ minimum: 1 }),
    content: t.String(),
    content_type: t.String(),
    edited_by: t.String(),
    acted_by: t.Nullable(
      t.Object(
        { id: t.String(), type: t.Union([t.Literal("user"), t.Literal("agent"), t.Literal("service")]) },
        { description: "Who wrote this version for edited_by when a service acted for it (X-As-User-Id)" },
      ),
    ),
    created_at: t.String({ format: "date-time" }),
    current: t.Boolean(),
  },
  { title: "MessageVersion", description: "One version of a message" },
);

export const MessageHistory = t.Object(
  { message_id: Uuid, versions: t.Array(MessageVersion, { description: "Oldest first, the current one last" }) },
  { title: "MessageHistory", description: "Every version of a message" },
);

export const MessageList = t.Array(Message, { description: "Messages in ascending sequence" });

/** The answer of an append: the content's new length in UTF-16 code units. */
export const AppendResult = t.Object(
  { messageId: Uuid, length: t.Integer({ minimum: 0, description: "The content's length after the delta, in UTF-16 code units" }) },
  { title: "AppendResult", description: "A delta applied to a streaming message" },
);
