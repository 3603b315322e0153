/**
 * REST routes of webhook endpoints: /api/webhooks[...] (docs/webhooks.md).
 */
import { Elysia } from "elysia";
import { authenticated } from "../../http/context";
import type { Services } from "../../services";
import { jsonBodyOnly } from "../shared-models";
import { CreateWebhookBody, DeliveryParams, ListDeliveriesQuery, UpdateWebhookBody, Webhook, WebhookDelivery, WebhookDeliveryList, WebhookList, WebhookParams } from "./model";
import {
  createWebhook,
  deleteWebhook,
  getWebhook,
  listDeliveries,
  listWebhooks,
  retryDelivery,
  testWebhook,
  updateWebhook,
} from "./service";

export function webhooksModule(services: Services) {
  return new Elysia({ prefix: "/api/webhooks", tags: ["webhooks"] })
    .use(authenticated)
    .onParse(jsonBodyOnly)
    .post(
      "",
      async ({ principal, body, set }) => {
        const created = await createWebhook(services, principal, body);
        set.status = 201;
        return created;
      },
      { body: CreateWebhookBody, response: { 201: Webhook }, detail: { summary: "Register a webhook endpoint (201, with its secret: shown only now)" } },
    )
    .get("", ({ principal }) => listWebhooks(services, principal), { response: { 200: WebhookList }, detail: { summary: "Webhook endpoints you manage" } })
    .get("/:id", ({ principal, params }) => getWebhook(services, principal, params.id), {
      params: WebhookParams,
      response: { 200: Webhook },
      detail: { summary: "A webhook endpoint" },
    })
    .patch("/:id", ({ principal, params, body }) => updateWebhook(services, principal, params.id, body), {
      params: WebhookParams,
      body: UpdateWebhookBody,
      response: { 200: Webhook },
      detail: { summary: "Change url, events, description; enable or disable; rotateSecret answers the new secret" },
    })
    .delete(
      "/:id",
      async ({ principal, params, set }) => {
        await deleteWebhook(services, principal, params.id);
        set.status = 204;
      },
      { params: WebhookParams, detail: { summary: "Delete a webhook endpoint and its deliveries" } },
    )
    .post(
      "/:id/test",
      async ({ principal, params, set }) => {
        const delivery = await testWebhook(services, principal, params.id);
        set.status = 202;
        return delivery;
      },
      { params: WebhookParams, response: { 202: WebhookDelivery }, detail: { summary: "Queue a signed webhook.test event (202 with the delivery)" } },
    )
    .get("/:id/deliveries", ({ principal, params, query }) => listDeliveries(services, principal, params.id, query), {
      params: WebhookParams,
      query: ListDeliveriesQuery,
      response: { 200: WebhookDeliveryList },
      detail: { summary: "Delivery log of the endpoint, newest first: events other than messages, and messages whose first attempt failed (kept 7 days)" },
    })
    .post(
      "/:id/deliveries/:deliveryId/retry",
      async ({ principal, params, set }) => {
        const delivery = await retryDelivery(services, principal, params.id, params.deliveryId);
        set.status = 202;
        return delivery;
      },
      { params: DeliveryParams, response: { 202: WebhookDelivery }, detail: { summary: "Deliver again (202): a failed delivery from its first attempt, a waiting one now" } },
    );
}
