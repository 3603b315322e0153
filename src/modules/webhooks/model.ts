import { t } from "elysia";
import { OrgId, QueryInteger, Text, Uuid } from "../shared-models";

const Url = Text({ minLength: 1, maxLength: 2000 });
const Events = t.Array(Text({ minLength: 1, maxLength: 100 }), { minItems: 1, maxItems: 50 });
const Description = Text({ maxLength: 500 });

export const CreateWebhookBody = t.Object({
  url: Url,
  /** Absent or null: every event type. */
  events: t.Optional(t.Union([Events, t.Null()])),
  description: t.Optional(Description),
  /** System admins only: an organisation's conversations, or (`installation: true`) every conversation. */
  orgId: t.Optional(OrgId),
  installation: t.Optional(t.Boolean()),
});

export const UpdateWebhookBody = t.Object({
  url: t.Optional(Url),
  /** null: every event type. */
  events: t.Optional(t.Union([Events, t.Null()])),
  description: t.Optional(t.Union([Description, t.Null()])),
  enabled: t.Optional(t.Boolean()),
  rotateSecret: t.Optional(t.Literal(true)),
});

export const WebhookParams = t.Object({ id: Uuid });
export const DeliveryParams = t.Object({ id: Uuid, deliveryId: Uuid });
export const ListDeliveriesQuery = t.Object({
  status: t.Optional(t.Union([t.Literal("pending"), t.Literal("delivered"), t.Literal("failed")])),
  limit: t.Optional(QueryInteger(1, 100)),
});

const DateTime = t.String({ format: "date-time" });
const NullableString = t.Nullable(t.String());

export const Webhook = t.Object(
  {
    id: Uuid,
    url: t.String(),
    description: NullableString,
    scope: t.Union([t.Literal("principal"), t.Literal("org"), t.Literal("installation")]),
    principal_id: NullableString,
    org_id: NullableString,
    events: t.Nullable(t.Array(t.String(), { description: "null: every event type" })),
    org_reach: t.Nullable(t.Array(t.String()), { description: "Registered by a service acting for its principal: the only organisations it hears (and conversations of none); null: no such limit" }),
    enabled: t.Boolean(),
    disabled_reason: NullableString,
    consecutive_failures: t.Integer({ minimum: 0 }),
    created_by: t.String(),
    created_at: DateTime,
    updated_at: DateTime,
    /** Only on creation and on rotation. */
    secret: t.Optional(t.String({ description: "whsec_…: shown on creation and on rotation only" })),
  },
  { title: "Webhook", description: "A webhook endpoint (docs/webhooks.md)" },
);

export const WebhookList = t.Array(Webhook, { description: "Webhook endpoints the caller manages" });

export const WebhookDelivery = t.Object(
  {
    id: Uuid,
    endpoint_id: Uuid,
    conversation_id: t.Nullable(Uuid),
    type: t.String(),
    status: t.Union([t.Literal("pending"), t.Literal("delivered"), t.Literal("failed")]),
    attempts: t.Integer({ minimum: 0 }),
    next_attempt_at: t.Nullable(DateTime),
    last_status: t.Nullable(t.Integer()),
    last_error: NullableString,
    occurred_at: DateTime,
    created_at: DateTime,
    delivered_at: t.Nullable(DateTime),
  },
  { title: "WebhookDelivery", description: "One event's delivery to one endpoint" },
);

export const WebhookDeliveryList = t.Array(WebhookDelivery, { description: "Deliveries, newest first" });

export type CreateWebhookInput = typeof CreateWebhookBody.static;
export type UpdateWebhookInput = typeof UpdateWebhookBody.static;
