/**
 * The API's resources and WebSocket payloads as the client sees them (docs/api.md, docs/protocol.md). Written out
 * here rather than imported so that the SDK carries no server code; a type test keeps the two in step.
 */

export type ParticipantType = "user" | "agent" | "service" | "bot";
export type PrincipalType = "user" | "agent" | "service";
export type ConversationRole = "owner" | "admin" | "member";
export type Priority = "low" | "normal" | "high" | "critical";
export type PresenceStatus = "online" | "away" | "busy" | "offline";
export type ControlEventName =
  | "stream.pause"
  | "stream.resume"
  | "stream.preempt"
  | "stream.route"
  | "stream.handoff"
  | "stream.cancel"
  | "stream.priority";

export interface Conversation {
  id: string;
  type: "private" | "group";
  name: string | null;
  description: string | null;
  org_id: string | null;
  created_by: string;
  created_at: string;
  updated_at: string;
  metadata: Record<string, unknown>;
}

export interface Participant {
  id: string;
  conversation_id: string;
  user_id: string;
  user_type: ParticipantType;
  role: ConversationRole;
  joined_at: string;
  last_read_at: string | null;
}

/** A conversation in the caller's list: when they last read it, and how many of others' messages came since (up to 100). */
export interface ConversationSummary extends Conversation {
  last_read_at: string | null;
  unread_count: number;
}

export interface ConversationWithParticipants extends Conversation {
  participants: Participant[];
}

export interface Message {
  id: string;
  conversation_id: string;
  sender_id: string;
  sender_type: ParticipantType;
  content: string;
  content_type: string;
  reply_to: string | null;
  org_id: string | null;
  run_id: string | null;
  trace_id: string | null;
  sequence: number;
  priority: Priority;
  interruptible: boolean;
  preempted_by: string | null;
  created_at: string;
  updated_at: string | null;
  deleted_at: string | null;
  metadata: Record<string, unknown>;
  version: number;
  data_class: string | null;
  policy_ref: string | null;
  /** Null for ordinary messages; a streaming message's state (its content grows by appends until it ends). */
  stream_state: StreamState | null;
}

export type StreamState = "streaming" | "complete" | "cancelled" | "interrupted";

export interface MessageVersion {
  version: number;
  content: string;
  content_type: string;
  edited_by: string;
  /** Who wrote this version for `edited_by` when a service acted for it; null otherwise. */
  acted_by: { id: string; type: PrincipalType } | null;
  created_at: string;
  current: boolean;
}

export interface PrincipalInfo {
  id: string;
  type: PrincipalType;
  name: string | null;
  email: string | null;
  orgs: { id: string; role: "admin" | "member" }[];
  entitlements: string[];
  isSuperAdmin: boolean;
}

export interface LoginResult {
  token: string;
  user: PrincipalInfo;
  expiresAt?: string;
}

export type AuthSession = { authenticated: false } | { authenticated: true; user: PrincipalInfo };

export interface Health {
  status: "ok" | "degraded";
  service: string;
}

export interface Bootstrap {
  service: string;
  version: string;
  description?: string;
  docsUrls?: Record<string, string>;
  endpoints?: { method: string; path: string }[];
  authentication?: Record<string, unknown>;
  websocketEvents?: { client: string[]; server: string[] };
  [key: string]: unknown;
}

export interface AdminConversationList {
  items: Conversation[];
  limit: number;
  offset: number;
  total: number;
}

export interface AdminConversationDetail {
  conversation: Conversation;
  participants: Participant[];
  recentMessages: Message[];
}

export interface AdminStats {
  totalConversations: number;
  totalMessages: number;
  uniqueParticipants: number;
  activeConversations24h: number;
}

// Request bodies (camelCase, as the API takes them).

export interface CreateConversationInput {
  type: "private" | "group";
  name?: string;
  description?: string;
  orgId?: string;
  metadata?: Record<string, unknown>;
  participants?: { userId: string; userType?: ParticipantType }[];
}

export interface UpdateConversationInput {
  name?: string;
  description?: string | null;
  metadata?: Record<string, unknown>;
}

export interface SendMessageInput {
  /** A client-chosen UUID makes the send idempotent: sending it again returns the stored message. */
  id?: string;
  content: string;
  contentType?: string;
  replyTo?: string;
  metadata?: Record<string, unknown>;
  runId?: string;
  traceId?: string;
  priority?: Priority;
  interruptible?: boolean;
  preemptedBy?: string;
  /** The content follows in appends (content may be empty then); docs/streaming.md. */
  streaming?: boolean;
}

export interface EditMessageInput {
  content: string;
  contentType?: string;
}

export type ControlTarget = string | { principalId: string; principalType?: ParticipantType };

export interface SendControlInput {
  event: ControlEventName;
  target?: ControlTarget;
  reason?: string;
  preemptedBy?: string;
  /** The run the event applies to; without it, every run that can take it. */
  runId?: string;
  traceId?: string;
  /** stream.priority: the new priority. */
  priority?: Priority;
  metadata?: Record<string, unknown>;
}

export interface ListMessagesOptions {
  limit?: number;
  /** A sequence number or an ISO time. */
  before?: number | string;
  after?: number | string;
}

// WebSocket payloads.

export interface SessionReady {
  connectionId: string;
  user: { id: string; type: PrincipalType };
  /** Present when the connection acts for `user` (X-As-User-Id): who really connected. */
  actedBy?: { id: string; type: PrincipalType };
  heartbeatMs: number;
  serverTime: string;
}

export interface JoinResult {
  conversationId: string;
  lastSequence: number;
  replayed: number;
  truncated: boolean;
  /** Extension: participants present in the conversation when the join completed. */
  presence?: { userId: string; userType: string; status: PresenceStatus }[];
  /** Extension: the conversation's runs not ended (active, paused, preempted), oldest first. */
  runs?: Run[];
  /** Extension: streaming messages whose content so far was sent, with its length; deltas go on from there. */
  streams?: { messageId: string; length: number }[];
}

/** A webhook endpoint (docs/webhooks.md); `secret` only on creation and rotation. */
export interface Webhook {
  id: string;
  url: string;
  description: string | null;
  scope: "principal" | "org" | "installation";
  principal_id: string | null;
  org_id: string | null;
  events: string[] | null;
  /** Registered by a service acting for its principal: the only organisations it hears; null: no such limit. */
  org_reach: string[] | null;
  enabled: boolean;
  disabled_reason: string | null;
  consecutive_failures: number;
  created_by: string;
  created_at: string;
  updated_at: string;
  secret?: string;
}

export interface WebhookDelivery {
  id: string;
  endpoint_id: string;
  conversation_id: string | null;
  type: string;
  status: "pending" | "delivered" | "failed";
  attempts: number;
  next_attempt_at: string | null;
  last_status: number | null;
  last_error: string | null;
  occurred_at: string;
  created_at: string;
  delivered_at: string | null;
}

export interface CreateWebhookInput {
  url: string;
  events?: string[];
  description?: string;
  /** System admins: an organisation's conversations, or every conversation. */
  orgId?: string;
  installation?: boolean;
}

export interface UpdateWebhookInput {
  url?: string;
  events?: string[] | null;
  description?: string | null;
  enabled?: boolean;
  rotateSecret?: true;
}

export type RunState = "active" | "paused" | "preempted" | "completed" | "failed" | "cancelled";

/** One agent's (or service's) response stream in a conversation (docs/runs.md). */
export interface Run {
  id: string;
  conversation_id: string;
  owner_id: string;
  owner_type: ParticipantType;
  state: RunState;
  priority: Priority;
  interruptible: boolean;
  started_at: string;
  updated_at: string;
  ended_at: string | null;
  end_reason: string | null;
  preempted_by: string | null;
  metadata: Record<string, unknown>;
}

export interface RunTransition {
  event: string;
  from: RunState | null;
  to: RunState | null;
  by: string;
  at: string;
  sequence: number;
  reason?: string;
}

export type RunWithTransitions = Run & { transitions: RunTransition[] };

export interface StartRunInput {
  runId?: string;
  priority?: Priority;
  interruptible?: boolean;
  metadata?: Record<string, unknown>;
}

export interface RunEnded {
  conversationId: string;
  runId: string;
  state: RunState;
  endReason: string | null;
  endedAt: string | null;
}

export interface ControlBroadcast {
  event: ControlEventName;
  conversationId: string;
  messageId: string;
  sequence: number;
  senderId: string;
  senderType: string;
  target?: unknown;
  reason?: string;
  preemptedBy?: string;
  runId?: string;
  traceId?: string;
  /** The run's state before and after, when the event applied to a run. */
  from?: string;
  to?: string;
  /** stream.priority: the run's new priority. */
  priority?: string;
  effectiveAt: string;
  metadata?: Record<string, unknown>;
}

export interface ParticipantChange {
  conversationId: string;
  userId: string;
  userType: ParticipantType;
  role: ConversationRole;
}

export interface TypingChange {
  conversationId: string;
  userId: string;
  userType: string;
}

export interface PresenceChange {
  userId: string;
  userType: string;
  status: PresenceStatus;
  conversationId: string;
}

/** One piece of a streaming message: `offset` is the content's length (UTF-16 code units) before `delta`. */
export interface MessageDelta {
  conversationId: string;
  messageId: string;
  runId?: string;
  offset: number;
  delta: string;
}

export interface ServerErrorPayload {
  code: string;
  message: string;
  event?: string;
}

/** Server events and their payloads. */
export interface ServerEvents {
  "message:new": Message;
  "message:updated": Message;
  "message:deleted": { id: string; conversationId: string; sequence: number; deletedAt: string };
  "message:delta": MessageDelta;
  "typing:started": TypingChange;
  "typing:stopped": TypingChange;
  "presence:changed": PresenceChange;
  "participant:joined": ParticipantChange;
  "participant:left": ParticipantChange;
  "participant:updated": ParticipantChange;
  "conversation:updated": Conversation;
  "conversation:deleted": { id: string };
  /** This principal was made a participant (a new conversation, an add or a join), on any connection of it. */
  "conversation:added": { conversation: Conversation; role: Participant["role"] };
  /** This principal is no longer a participant (removed or left). */
  "conversation:removed": { conversationId: string };
  "stream.pause": ControlBroadcast;
  "stream.resume": ControlBroadcast;
  "stream.preempt": ControlBroadcast;
  "stream.route": ControlBroadcast;
  "stream.handoff": ControlBroadcast;
  "stream.cancel": ControlBroadcast;
  "stream.priority": ControlBroadcast;
  "run:started": Run;
  "run:ended": RunEnded;
  "session:ready": SessionReady;
  pong: { serverTime: string };
  /** A frame sent without `ack` failed. */
  error: ServerErrorPayload;
}

/** Client events, their payloads and their ack results. */
export interface ClientEvents {
  "join:conversation": { data: string | { conversationId: string; since?: number }; result: JoinResult };
  "leave:conversation": { data: string | { conversationId: string }; result: { conversationId: string } };
  "message:send": { data: { conversationId: string } & SendMessageInput; result: Message };
  "message:edit": { data: { messageId: string; conversationId?: string } & EditMessageInput; result: Message };
  "message:delete": { data: { messageId: string; conversationId?: string }; result: { id: string; conversationId: string } };
  "control:send": { data: { conversationId: string } & SendControlInput; result: Message };
  "typing:start": { data: string | { conversationId: string }; result: Record<string, never> };
  "typing:stop": { data: string | { conversationId: string }; result: Record<string, never> };
  "presence:update": { data: { status: PresenceStatus }; result: { status: PresenceStatus } };
  ping: { data?: unknown; result: { serverTime: string } };
  "message:append": { data: { messageId: string; delta: string }; result: { messageId: string; length: number } };
  "message:finish": { data: { messageId: string; content?: string }; result: Message };
}
