/**
 * Webhook endpoints: who may register which, and their management (docs/webhooks.md). Delivery itself is
 * src/webhooks/.
 *
 * - Anyone authenticated registers endpoints for itself: the events of the conversations it participates
 *   in (an agent's key, or a service acting for its agent), without its own messages.
 * - A system admin may register one for an organisation in its reach (`orgId`) or, when its grant is
 *   installation-wide, for every conversation (`installation: true`).
 * - An endpoint is managed by whoever registered it, and by system admins whose reach covers it; anyone
 *   else gets 404.
 */
import { and, desc, eq, or, sql, type SQL } from "drizzle-orm";
import type { PgUpdateSetSource } from "drizzle-orm/pg-core";
import { actingOrgReach } from "../../auth/act-as";
import { isSystemAdmin, type Principal } from "../../auth/principal";
import { webhookCursors, webhookDeliveries, webhookEndpoints, type WebhookDeliveryRow, type WebhookEndpointRow } from "../../db/schema";
import { inOrgScope, orgScopeOf } from "../../domain/access";
import { fail, notFound } from "../../core/errors";
import type { Db } from "../../db/client";
import type { Services } from "../../services";
import { TEST_EVENT_TYPE, isEventFilter } from "../../webhooks/event-types";
import { newWebhookSecret } from "../../webhooks/signing";
import { checkWebhookUrl } from "../../webhooks/url-guard";
import { CLOSE_HEARD_PERIOD, FAIL_UNTAKEN_ROWS, NO_CONVERSATION, OPEN_HEARD_PERIOD } from "../../webhooks/pair-statements";
import { run } from "../../webhooks/statement";
import type { CreateWebhookInput, UpdateWebhookInput } from "./model";

/** Per registering principal: enough for any agent, too few to fan one event out without bound. */
export const MAX_ENDPOINTS_PER_PRINCIPAL = 20;
/** After a rotation the previous secret keeps signing this long, so receivers can switch without a gap. */
const PREVIOUS_SECRET_GRACE_MS = 24 * 3600_000;

const iso = (value: Date | null) => (value ? value.toISOString() : null);

export function toWebhook(row: WebhookEndpointRow) {
  return {
    id: row.id,
    url: row.url,
    description: row.description ?? null,
    scope: row.scope,
    principal_id: row.principal_id ?? null,
    org_id: row.org_id ?? null,
    events: row.events ?? null,
    org_reach: row.org_reach ?? null,
    enabled: row.enabled,
    disabled_reason: row.disabled_reason ?? null,
    consecutive_failures: row.consecutive_failures,
    created_by: row.created_by,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
  };
}

export function toDelivery(row: WebhookDeliveryRow) {
  return {
    id: row.id,
    endpoint_id: row.endpoint_id,
    conversation_id: row.conversation_id === NO_CONVERSATION ? null : (row.conversation_id ?? null),
    type: row.event_type,
    status: row.status,
    attempts: row.attempts,
    next_attempt_at: row.status === "pending" ? row.next_attempt_at.toISOString() : null,
    last_status: row.last_status ?? null,
    last_error: row.last_error ?? null,
    occurred_at: row.occurred_at.toISOString(),
    created_at: row.created_at.toISOString(),
    delivered_at: iso(row.delivered_at),
  };
}

function checkEvents(events: string[] | null | undefined): string[] | null {
  if (!events) return null;
  const unknown = events.filter((e) => !isEventFilter(e));
  if (unknown.length > 0) throw fail.invalid_input(`events: unknown event type ${JSON.stringify(unknown[0])}`);
  return [...new Set(events)];
}

async function loadEndpoint(services: Services, principal: Principal, id: string): Promise<WebhookEndpointRow> {
  const [row] = await services.database.db.select().from(webhookEndpoints).where(eq(webhookEndpoints.id, id));
  if (!row || !mayManage(principal, row)) throw notFound("Webhook endpoint");
  return row;
}

/**
 * Whether an acting service may see and manage the principal's endpoint: only one registered within its
 * own reach. Otherwise a new url would carry the principal's other organisations' events to the service.
 */
function withinActingReachOf(principal: Principal, row: WebhookEndpointRow): boolean {
  const reach = actingOrgReach(principal);
  return !reach || (row.org_reach !== null && row.org_reach.every((org) => reach.includes(org)));
}

function mayManage(principal: Principal, row: WebhookEndpointRow): boolean {
  if (row.created_by === principal.id) return withinActingReachOf(principal, row);
  if (!isSystemAdmin(principal)) return false;
  const reach = orgScopeOf(principal);
  return !reach || (row.org_id !== null && reach.includes(row.org_id));
}

export async function createWebhook(services: Services, principal: Principal, input: CreateWebhookInput) {
  const { db } = services.database;
  const url = (await checkWebhookUrl(input.url, services.config.webhooks.allowPrivate)).toString();
  const events = checkEvents(input.events);
  let scope: WebhookEndpointRow["scope"] = "principal";
  if (input.installation || input.orgId !== undefined) {
    if (!isSystemAdmin(principal)) throw fail.admin_required("Only system admins register endpoints for an organization or the installation");
    if (input.installation && input.orgId !== undefined) throw fail.invalid_input("Give orgId or installation, not both");
    if (input.installation) {
      if (orgScopeOf(principal)) throw fail.admin_required("Endpoints for the whole installation need an installation-wide admin");
      scope = "installation";
    } else {
      if (!inOrgScope(principal, input.orgId!)) throw fail.org_forbidden("That organization is outside your reach");
      scope = "org";
    }
  }
  const [{ count }] = await db
    .select({ count: sql<number>`count(*)::int` })
    .from(webhookEndpoints)
    .where(eq(webhookEndpoints.created_by, principal.id));
  if (count >= MAX_ENDPOINTS_PER_PRINCIPAL) {
    throw fail.too_many_webhooks(`At most ${MAX_ENDPOINTS_PER_PRINCIPAL} webhook endpoints per principal`);
  }
  const secret = newWebhookSecret();
  const [row] = await db
    .insert(webhookEndpoints)
    .values({
      id: Bun.randomUUIDv7(),
      url,
      description: input.description ?? null,
      scope,
      principal_id: scope === "principal" ? principal.id : null,
      org_id: scope === "org" ? input.orgId! : null,
      events,
      // Registered by a service acting for the principal: it hears no more than that service reached.
      org_reach: actingOrgReach(principal) ?? null,
      secret,
      created_by: principal.id,
    })
    .returning();
  services.webhooks.markActive();
  return { ...toWebhook(row), secret };
}

export async function listWebhooks(services: Services, principal: Principal) {
  const rows = await services.database.db
    .select()
    .from(webhookEndpoints)
    .where(manageableCondition(principal))
    .orderBy(webhookEndpoints.created_at, webhookEndpoints.id)
    .limit(1000);
  return rows.map(toWebhook);
}

/** Endpoints the principal may manage, as a condition (the same rule as `mayManage`). */
function manageableCondition(principal: Principal): SQL {
  const acting = actingOrgReach(principal);
  if (acting) {
    // Acting (never an admin then): the principal's endpoints registered within this reach.
    const reachArray = sql`array(select jsonb_array_elements_text(${JSON.stringify(acting)}::jsonb))`;
    return and(eq(webhookEndpoints.created_by, principal.id), sql`${webhookEndpoints.org_reach} <@ ${reachArray}`)!;
  }
  const own = eq(webhookEndpoints.created_by, principal.id);
  if (!isSystemAdmin(principal)) return own;
  const reach = orgScopeOf(principal);
  if (!reach) return sql`true`;
  return or(own, ...reach.map((orgId) => eq(webhookEndpoints.org_id, orgId)))!;
}

export async function getWebhook(services: Services, principal: Principal, id: string) {
  return toWebhook(await loadEndpoint(services, principal, id));
}

export async function updateWebhook(services: Services, principal: Principal, id: string, input: UpdateWebhookInput) {
  const current = await loadEndpoint(services, principal, id);
  const changes: PgUpdateSetSource<typeof webhookEndpoints> = { updated_at: new Date() };
  if (input.url !== undefined) changes.url = (await checkWebhookUrl(input.url, services.config.webhooks.allowPrivate)).toString();
  if (input.events !== undefined) changes.events = checkEvents(input.events);
  if (input.description !== undefined) changes.description = input.description;
  if (input.enabled === true && !current.enabled) {
    // Re-enabled: it starts afresh; what waited when it was disabled is delivered now, what was written
    // while it was disabled is not.
    Object.assign(changes, { enabled: true, disabled_reason: null, consecutive_failures: 0, receives_since: sql`now()`, heard_periods: sql.raw(OPEN_HEARD_PERIOD) });
  } else if (input.enabled === false && current.enabled) {
    Object.assign(changes, { enabled: false, disabled_reason: "disabled by its owner", disabled_at: sql`now()`, heard_periods: sql.raw(CLOSE_HEARD_PERIOD) });
  }
  let secret: string | undefined;
  if (input.rotateSecret) {
    secret = newWebhookSecret();
    Object.assign(changes, {
      secret,
      previous_secret: current.secret,
      previous_secret_expires_at: new Date(Date.now() + PREVIOUS_SECRET_GRACE_MS),
    });
  }
  const row = await services.database.db.transaction(async (tx) => {
    const [updated] = await tx.update(webhookEndpoints).set(changes).where(eq(webhookEndpoints.id, id)).returning();
    if (updated && changes.events) await run(tx, FAIL_UNTAKEN_ROWS, [id]);
    return updated;
  });
  if (!row) throw notFound("Webhook endpoint");
  if (row.enabled) {
    services.webhooks.markActive();
    services.webhooks.wake();
  } else {
    services.webhooks.endpointsChanged();
  }
  return secret ? { ...toWebhook(row), secret } : toWebhook(row);
}

export async function deleteWebhook(services: Services, principal: Principal, id: string): Promise<void> {
  await loadEndpoint(services, principal, id);
  await services.database.db.delete(webhookEndpoints).where(eq(webhookEndpoints.id, id));
  services.webhooks.endpointsChanged();
}

/** Queues a `webhook.test` event for the endpoint, delivered (and signed) like any other. */
export async function testWebhook(services: Services, principal: Principal, id: string) {
  const endpoint = await loadEndpoint(services, principal, id);
  const now = new Date();
  const [row] = await services.database.db
    .insert(webhookDeliveries)
    .values({
      endpoint_id: endpoint.id,
      conversation_id: NO_CONVERSATION,
      event_type: TEST_EVENT_TYPE,
      event_key: `test:${Bun.randomUUIDv7()}`,
      occurred_at: now,
      payload: { endpointId: endpoint.id, message: "A test event: the endpoint is reachable and verifies signatures." },
    })
    .returning();
  // Test events are the endpoint's own "conversation", delivered in order like any other pair.
  await services.database.db.insert(webhookCursors).values({ endpoint_id: endpoint.id, conversation_id: NO_CONVERSATION, sequence: 0 }).onConflictDoNothing();
  services.webhooks.wake();
  return toDelivery(row);
}

export async function listDeliveries(
  services: Services,
  principal: Principal,
  id: string,
  query: { status?: WebhookDeliveryRow["status"]; limit?: number },
) {
  await loadEndpoint(services, principal, id);
  const rows = await services.database.db
    .select()
    .from(webhookDeliveries)
    .where(and(eq(webhookDeliveries.endpoint_id, id), query.status ? eq(webhookDeliveries.status, query.status) : undefined))
    .orderBy(desc(webhookDeliveries.created_at), desc(webhookDeliveries.position))
    .limit(query.limit ?? 50);
  return rows.map(toDelivery);
}

/** Delivers again, as soon as its turn comes: a failed one from its first attempt, a waiting one now. */
export async function retryDelivery(services: Services, principal: Principal, id: string, deliveryId: string) {
  await loadEndpoint(services, principal, id);
  const [row] = await services.database.db
    .update(webhookDeliveries)
    .set({ status: "pending", attempts: 0, next_attempt_at: new Date(), lease_until: null, delivered_at: null })
    .where(and(eq(webhookDeliveries.id, deliveryId), eq(webhookDeliveries.endpoint_id, id)))
    .returning();
  if (!row) throw notFound("Delivery");
  // Its pair needs a cursor to be taken; one made now starts at the end of the log (nothing else is resent).
  await services.database.db.execute(sql`
    insert into webhook_cursors (endpoint_id, conversation_id, sequence)
    values (${id}, ${row.conversation_id ?? NO_CONVERSATION}, coalesce((select last_sequence from conversations where id = ${row.conversation_id ?? NO_CONVERSATION}), 0))
    on conflict do nothing`);
  services.webhooks.wake();
  return toDelivery(row);
}

// ---------------------------------------------------------------- operator (CLI, admin socket)

export interface OperatorWebhookInput {
  url: string;
  /** Exactly one of: the principal whose conversations, an organisation, or the whole installation. */
  principalId?: string;
  orgId?: string;
  installation?: boolean;
  events?: string[];
  description?: string;
}

/** The operator registers for anyone; the same checks of url and events as the API. Running servers notice within seconds. */
export async function createWebhookAsOperator(db: Db, allowPrivate: boolean, input: OperatorWebhookInput) {
  const targets = [input.principalId, input.orgId, input.installation ? "installation" : undefined].filter(Boolean);
  if (targets.length !== 1) throw fail.invalid_input("Give exactly one of --principal, --org or --installation");
  if (typeof input.url !== "string") throw fail.invalid_input("A url is required");
  const url = (await checkWebhookUrl(input.url, allowPrivate)).toString();
  const events = checkEvents(input.events && input.events.length > 0 ? input.events : null);
  const scope: WebhookEndpointRow["scope"] = input.principalId ? "principal" : input.orgId ? "org" : "installation";
  const secret = newWebhookSecret();
  const [row] = await db
    .insert(webhookEndpoints)
    .values({
      id: Bun.randomUUIDv7(),
      url,
      description: input.description?.slice(0, 500) ?? null,
      scope,
      principal_id: input.principalId ?? null,
      org_id: input.orgId ?? null,
      events,
      secret,
      created_by: "operator",
    })
    .returning();
  return { ...toWebhook(row), secret };
}

export async function listWebhooksAsOperator(db: Db) {
  return (await db.select().from(webhookEndpoints).orderBy(webhookEndpoints.created_at, webhookEndpoints.id)).map(toWebhook);
}

export async function disableWebhookAsOperator(db: Db, id: string) {
  const [row] = await db
    .update(webhookEndpoints)
    .set({ enabled: false, disabled_reason: "disabled by an operator", disabled_at: sql`now()`, heard_periods: sql.raw(CLOSE_HEARD_PERIOD), updated_at: new Date() })
    .where(and(eq(webhookEndpoints.id, id), eq(webhookEndpoints.enabled, true)))
    .returning();
  // Disabled already: it stays as it is (its periods closed when it was disabled).
  const endpoint = row ?? (await db.select().from(webhookEndpoints).where(eq(webhookEndpoints.id, id)))[0];
  if (!endpoint) throw notFound("Webhook endpoint");
  return toWebhook(endpoint);
}

export async function deleteWebhookAsOperator(db: Db, id: string) {
  const deleted = await db.delete(webhookEndpoints).where(eq(webhookEndpoints.id, id)).returning({ id: webhookEndpoints.id });
  if (deleted.length === 0) throw notFound("Webhook endpoint");
  return { id };
}
