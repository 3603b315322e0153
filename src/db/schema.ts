/**
 * The whole product's schema. TypeScript keys are the column names, which are also the field names of the
 * API's resources (snake_case): a row read with Drizzle or with raw SQL has the same shape, and a resource
 * is the row minus its internal columns. One schema serves PostgreSQL and the embedded PGlite alike.
 */
import { sql } from "drizzle-orm";
import {
  bigint,
  boolean,
  customType,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from "drizzle-orm/pg-core";

/** A set of time periods (PostgreSQL's `tstzmultirange`), kept as PostgreSQL writes it; read and changed in SQL. */
const timePeriods = customType<{ data: string; driverData: string }>({ dataType: () => "tstzmultirange" });

const createdAt = () => timestamp("created_at", { withTimezone: true }).notNull().defaultNow();

// ---------------------------------------------------------------- identity

/** Users, agents and services: anyone who can hold a session or an API key. */
export const principals = pgTable("principals", {
  id: text("id").primaryKey(),
  type: text("type").notNull().$type<"user" | "agent" | "service">(),
  email: text("email"),
  name: text("name"),
  password_hash: text("password_hash"),
  is_super_admin: boolean("is_super_admin").notNull().default(false),
  entitlements: text("entitlements").array().notNull().default(sql`'{}'::text[]`),
  disabled_at: timestamp("disabled_at", { withTimezone: true }),
  created_at: createdAt(),
}, (t) => [
  // Emails are matched case-insensitively at login.
  uniqueIndex("principals_email_key").on(sql`lower(${t.email})`),
]);

export const organizations = pgTable("organizations", {
  id: text("id").primaryKey(),
  name: text("name").notNull(),
  created_at: createdAt(),
});

export const memberships = pgTable("memberships", {
  principal_id: text("principal_id").notNull().references(() => principals.id, { onDelete: "cascade" }),
  org_id: text("org_id").notNull().references(() => organizations.id, { onDelete: "cascade" }),
  role: text("role").notNull().$type<"admin" | "member">(),
  created_at: createdAt(),
}, (t) => [
  primaryKey({ columns: [t.principal_id, t.org_id] }),
  index("memberships_org_idx").on(t.org_id),
]);

/** Login sessions. The token handed out is `<id>.<secret>`; only SHA-256(secret) is stored. */
export const sessions = pgTable("sessions", {
  id: uuid("id").primaryKey(),
  principal_id: text("principal_id").notNull().references(() => principals.id, { onDelete: "cascade" }),
  token_hash: text("token_hash").notNull(),
  created_at: createdAt(),
  expires_at: timestamp("expires_at", { withTimezone: true }).notNull(),
  revoked_at: timestamp("revoked_at", { withTimezone: true }),
  ip: text("ip"),
  user_agent: text("user_agent"),
}, (t) => [index("sessions_principal_idx").on(t.principal_id)]);

/** API keys. The key is `smk_<prefix>_<secret>`; the prefix is visible and indexed, the key is stored hashed. */
export const apiKeys = pgTable("api_keys", {
  id: uuid("id").primaryKey().defaultRandom(),
  prefix: text("prefix").notNull(),
  key_hash: text("key_hash").notNull(),
  principal_id: text("principal_id").notNull().references(() => principals.id, { onDelete: "cascade" }),
  name: text("name"),
  /** Entitlements granted to whoever presents the key. */
  scopes: text("scopes").array().notNull().default(sql`'{}'::text[]`),
  /** Organisations the key acts in: [{id, role}]. */
  orgs: jsonb("orgs").notNull().default(sql`'[]'::jsonb`).$type<{ id: string; role: "admin" | "member" }[]>(),
  created_at: createdAt(),
  expires_at: timestamp("expires_at", { withTimezone: true }),
  revoked_at: timestamp("revoked_at", { withTimezone: true }),
}, (t) => [
  uniqueIndex("api_keys_prefix_key").on(t.prefix),
  index("api_keys_principal_idx").on(t.principal_id),
]);

// ---------------------------------------------------------------- messaging

export const conversations = pgTable("conversations", {
  id: uuid("id").primaryKey().defaultRandom(),
  type: text("type").notNull().$type<"private" | "group">(),
  name: text("name"),
  description: text("description"),
  org_id: text("org_id"),
  created_by: text("created_by").notNull(),
  created_at: createdAt(),
  updated_at: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
  metadata: jsonb("metadata").notNull().default(sql`'{}'::jsonb`).$type<Record<string, unknown>>(),
  /** Highest sequence handed out; the next message takes last_sequence + 1 in the same statement. */
  last_sequence: integer("last_sequence").notNull().default(0),
  /**
   * Set by every send. Deliberately in no index (nor is anything else a send changes), so that the
   * counter's update is a heap-only update that writes no index entries on the hot path.
   */
  last_message_at: timestamp("last_message_at", { withTimezone: true }),
}, (t) => [index("conversations_org_updated_idx").on(t.org_id, t.updated_at.desc())]);

export const participants = pgTable("participants", {
  id: uuid("id").primaryKey().defaultRandom(),
  conversation_id: uuid("conversation_id").notNull().references(() => conversations.id, { onDelete: "cascade" }),
  user_id: text("user_id").notNull(),
  user_type: text("user_type").notNull().$type<"user" | "agent" | "service" | "bot">(),
  role: text("role").notNull().$type<"owner" | "admin" | "member">(),
  joined_at: timestamp("joined_at", { withTimezone: true }).notNull().defaultNow(),
  last_read_at: timestamp("last_read_at", { withTimezone: true }),
}, (t) => [
  uniqueIndex("participants_conversation_user_key").on(t.conversation_id, t.user_id),
  index("participants_user_idx").on(t.user_id),
]);

export const messages = pgTable("messages", {
  id: uuid("id").primaryKey(),
  conversation_id: uuid("conversation_id").notNull().references(() => conversations.id, { onDelete: "cascade" }),
  sender_id: text("sender_id").notNull(),
  sender_type: text("sender_type").notNull().$type<"user" | "agent" | "service" | "bot">(),
  content: text("content").notNull(),
  content_type: text("content_type").notNull().default("text/plain"),
  reply_to: uuid("reply_to"),
  org_id: text("org_id"),
  run_id: text("run_id"),
  trace_id: text("trace_id"),
  sequence: integer("sequence").notNull(),
  priority: text("priority").notNull().default("normal").$type<"low" | "normal" | "high" | "critical">(),
  interruptible: boolean("interruptible").notNull().default(true),
  preempted_by: uuid("preempted_by"),
  created_at: createdAt(),
  updated_at: timestamp("updated_at", { withTimezone: true }),
  deleted_at: timestamp("deleted_at", { withTimezone: true }),
  metadata: jsonb("metadata").notNull().default(sql`'{}'::jsonb`).$type<Record<string, unknown>>(),
  version: integer("version").notNull().default(1),
  data_class: text("data_class"),
  policy_ref: text("policy_ref"),
  /** Null for ordinary messages; a streaming message's state (docs/streaming.md). */
  stream_state: text("stream_state").$type<"streaming" | "complete" | "cancelled" | "interrupted">(),
  /** The instance holding an open stream, so that the others end it once that instance is gone. */
  stream_holder: text("stream_holder"),
}, (t) => [
  uniqueIndex("messages_conversation_sequence_key").on(t.conversation_id, t.sequence),
  index("messages_conversation_created_idx").on(t.conversation_id, t.created_at),
  // Only open streams: the sweeps of interrupted streams read this small index.
  index("messages_streaming_idx").on(t.updated_at).where(sql`${t.stream_state} = 'streaming'`),
]);

/**
 * Agent runs: one agent's (or service's) response stream in a conversation, named by the `run_id` its
 * messages carry. The state is what the `stream.*` control events change; sends into a run check it in
 * the send statement. Each transition is also a stored control message (the audit trail).
 */
export const runs = pgTable("runs", {
  conversation_id: uuid("conversation_id").notNull().references(() => conversations.id, { onDelete: "cascade" }),
  id: text("id").notNull(),
  owner_id: text("owner_id").notNull(),
  owner_type: text("owner_type").notNull().$type<"user" | "agent" | "service" | "bot">(),
  state: text("state").notNull().$type<"active" | "paused" | "preempted" | "completed" | "failed" | "cancelled">(),
  priority: text("priority").notNull().default("normal").$type<"low" | "normal" | "high" | "critical">(),
  interruptible: boolean("interruptible").notNull().default(true),
  started_at: timestamp("started_at", { withTimezone: true }).notNull().defaultNow(),
  updated_at: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
  ended_at: timestamp("ended_at", { withTimezone: true }),
  end_reason: text("end_reason"),
  preempted_by: uuid("preempted_by"),
  metadata: jsonb("metadata").notNull().default(sql`'{}'::jsonb`).$type<Record<string, unknown>>(),
}, (t) => [
  primaryKey({ columns: [t.conversation_id, t.id] }),
  // Every send asks whether an active run would be preempted: an index holding only active runs keeps that
  // probe free when there are none.
  index("runs_active_idx").on(t.conversation_id).where(sql`state = 'active'`),
  index("runs_conversation_started_idx").on(t.conversation_id, t.started_at.desc()),
]);

/** Every superseded content of a message, with who wrote it and when. */
export const messageVersions = pgTable("message_versions", {
  message_id: uuid("message_id").notNull().references(() => messages.id, { onDelete: "cascade" }),
  version: integer("version").notNull(),
  content: text("content").notNull(),
  content_type: text("content_type").notNull(),
  edited_by: text("edited_by").notNull(),
  /** Who wrote this version for the sender, when a service acted for it (X-As-User-Id); null otherwise. */
  acted_by: jsonb("acted_by").$type<{ id: string; type: "user" | "agent" | "service" }>(),
  created_at: timestamp("created_at", { withTimezone: true }).notNull(),
  superseded_at: timestamp("superseded_at", { withTimezone: true }).notNull().defaultNow(),
}, (t) => [primaryKey({ columns: [t.message_id, t.version] })]);

// ---------------------------------------------------------------- webhooks

/**
 * Where events are POSTed (Standard Webhooks). `scope` says which conversations' events it receives: those
 * `principal_id` participates in, those of `org_id`, or every conversation of the installation.
 */
export const webhookEndpoints = pgTable("webhook_endpoints", {
  id: uuid("id").primaryKey(),
  url: text("url").notNull(),
  description: text("description"),
  scope: text("scope").notNull().$type<"principal" | "org" | "installation">(),
  principal_id: text("principal_id"),
  org_id: text("org_id"),
  /** Event types it receives (`stream.*` for every control event); null for all of them. */
  events: text("events").array(),
  /**
   * Registered by a service acting for its principal: the organisations that service reached, beyond which
   * the endpoint hears nothing (conversations of no organisation aside). Null: the principal's own reach.
   */
  org_reach: text("org_reach").array(),
  /** `whsec_…`; signs every delivery. Shown once, when created or rotated. */
  secret: text("secret").notNull(),
  /** After a rotation the old secret signs too, until `previous_secret_expires_at`. */
  previous_secret: text("previous_secret"),
  previous_secret_expires_at: timestamp("previous_secret_expires_at", { withTimezone: true }),
  enabled: boolean("enabled").notNull().default(true),
  disabled_reason: text("disabled_reason"),
  consecutive_failures: integer("consecutive_failures").notNull().default(0),
  /**
   * The periods it was enabled in, by the database's clock: a message is delivered when it was written in
   * one of them (every enabling opens one, every disabling closes the open one).
   */
  heard_periods: timePeriods("heard_periods").notNull().default(sql`tstzmultirange(tstzrange(now(), null))`),
  /** Its creation or last re-enabling: where the cursor of a conversation it did not follow yet starts. */
  receives_since: timestamp("receives_since", { withTimezone: true }).notNull().defaultNow(),
  /** When it was last disabled. */
  disabled_at: timestamp("disabled_at", { withTimezone: true }),
  created_by: text("created_by").notNull(),
  created_at: createdAt(),
  updated_at: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
}, (t) => [
  index("webhook_endpoints_principal_idx").on(t.principal_id),
  index("webhook_endpoints_created_by_idx").on(t.created_by),
]);

/**
 * The outbox of what the message log cannot give back (src/webhooks/outbox.ts): events of writes other
 * than a send (participants, conversations, edits, deletions, runs started or ended without a message),
 * test events, and the messages whose first attempt failed. Delivered at least once, one at a time per
 * (endpoint, conversation), in `position` order, between the messages of the log (`after_sequence`).
 */
export const webhookDeliveries = pgTable("webhook_deliveries", {
  id: uuid("id").primaryKey().default(sql`gen_random_uuid()`),
  endpoint_id: uuid("endpoint_id").notNull().references(() => webhookEndpoints.id, { onDelete: "cascade" }),
  /** Null for events of no conversation (the endpoint's test event). No foreign key: deletions are delivered too. */
  conversation_id: uuid("conversation_id"),
  event_type: text("event_type").notNull(),
  /** What the event is about, unique per endpoint: an event enqueued twice is delivered once. */
  event_key: text("event_key").notNull(),
  /** For message events: the payload is read from the message when it was not stored. */
  message_id: uuid("message_id"),
  sequence: integer("sequence"),
  /** Written when the conversation's log stood at this sequence: delivered after its messages up to it, before later ones. */
  after_sequence: integer("after_sequence").notNull().default(0),
  occurred_at: timestamp("occurred_at", { withTimezone: true }).notNull(),
  payload: jsonb("payload").$type<Record<string, unknown>>(),
  status: text("status").notNull().default("pending").$type<"pending" | "delivered" | "failed">(),
  attempts: integer("attempts").notNull().default(0),
  next_attempt_at: timestamp("next_attempt_at", { withTimezone: true }).notNull().defaultNow(),
  lease_until: timestamp("lease_until", { withTimezone: true }),
  /** Set with the lease: an attempt whose lease ran out (and was taken over) records nothing. */
  lease_token: uuid("lease_token"),
  last_status: integer("last_status"),
  last_error: text("last_error"),
  created_at: createdAt(),
  delivered_at: timestamp("delivered_at", { withTimezone: true }),
  /** Orders rows of one (endpoint, conversation) that occurred in the same microsecond. */
  position: bigint("position", { mode: "number" }).generatedAlwaysAsIdentity(),
}, (t) => [
  uniqueIndex("webhook_deliveries_event_key").on(t.endpoint_id, t.event_key),
  index("webhook_deliveries_pending_pair_idx")
    .on(t.endpoint_id, t.conversation_id, t.after_sequence, t.position)
    .where(sql`status = 'pending'`),
  index("webhook_deliveries_endpoint_created_idx").on(t.endpoint_id, t.created_at.desc()),
]);

/**
 * How far each (endpoint, conversation) got through the message log: every message up to `sequence` was
 * delivered or, when its first attempt failed, became a `webhook_deliveries` row. The message log is the
 * outbox of sends, so that a send writes nothing for its webhooks. An instance delivers a pair while it
 * holds `lease_until` (with its `lease_token`); events of no conversation use the nil uuid. No foreign key
 * to the conversation: a deleted conversation's last events are still delivered.
 */
export const webhookCursors = pgTable("webhook_cursors", {
  endpoint_id: uuid("endpoint_id").notNull().references(() => webhookEndpoints.id, { onDelete: "cascade" }),
  conversation_id: uuid("conversation_id").notNull(),
  sequence: integer("sequence").notNull(),
  /** For an agent's endpoint: the conversation's sequence when the agent was last removed (what it still hears). */
  member_until: integer("member_until"),
  lease_until: timestamp("lease_until", { withTimezone: true }),
  lease_token: uuid("lease_token"),
  updated_at: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
}, (t) => [primaryKey({ columns: [t.endpoint_id, t.conversation_id] })]);

export type PrincipalRow = typeof principals.$inferSelect;
export type ConversationRow = typeof conversations.$inferSelect;
export type ParticipantRow = typeof participants.$inferSelect;
export type MessageRow = typeof messages.$inferSelect;
export type MessageVersionRow = typeof messageVersions.$inferSelect;
export type RunRow = typeof runs.$inferSelect;
export type WebhookEndpointRow = typeof webhookEndpoints.$inferSelect;
export type WebhookDeliveryRow = typeof webhookDeliveries.$inferSelect;
export type WebhookCursorRow = typeof webhookCursors.$inferSelect;
