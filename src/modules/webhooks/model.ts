import { t } from "elysia";
import { OrgId, QueryInteger, Text, Uuid } from "../shared-models";

const Url = Text({ minLength: 1, maxLength: 2000 });
const Events = t.Array(Text({ minLength: 1, maxLength: 100 }), { minItems: 1, maxItems: 50 });
const Description = Text({ maxLength: 500 });

export const CreateWebhookBody = t.Object({
  url: Url,
  events: t.Optional(Events),
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

export type CreateWebhookInput = typeof CreateWebhookBody.static;
export type UpdateWebhookInput = typeof UpdateWebhookBody.static;
