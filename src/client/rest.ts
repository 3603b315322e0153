/**
 * Typed REST calls, one method per endpoint of the API. Credentials: a session token (from `login`, or
 * given) sent as a bearer token, or an API key sent as X-API-Key. A 429 `rate_limited` is retried after
 * its Retry-After when that is short (see `retry`), and surfaced otherwise.
 */
import { ApiError } from "./errors.js";
import { fallbackDelayMs, retryAfterMs, retryOptions, sleep, type RetryOptions } from "./rate-limit.js";
import type {
  AdminConversationDetail,
  AdminConversationList,
  AdminStats,
  AuthSession,
  Bootstrap,
  Conversation,
  ConversationRole,
  ConversationSummary,
  ConversationWithParticipants,
  CreateConversationInput,
  CreateWebhookInput,
  EditMessageInput,
  Health,
  ListMessagesOptions,
  LoginResult,
  Message,
  MessageVersion,
  Participant,
  ParticipantType,
  PrincipalInfo,
  Run,
  RunWithTransitions,
  SendControlInput,
  SendMessageInput,
  StartRunInput,
  UpdateConversationInput,
  UpdateWebhookInput,
  Webhook,
  WebhookDelivery,
} from "./types.js";

/** Optional scope headers (docs/api.md): sent with every request of the client. */
export interface ScopeOptions {
  orgId?: string;
  serviceId?: string;
  env?: "dev" | "stage" | "prod";
  dataClass?: "none" | "pii" | "phi" | "secret";
  policyRef?: string;
  /** Act for this principal (X-As-User-Id); the caller needs the `messaging:act-as` entitlement. */
  asUserId?: string;
}

export interface RestOptions {
  /** Base URL of the service, e.g. `http://localhost:5005`. */
  baseUrl: string;
  /** Session token or bearer API key. */
  token?: string;
  apiKey?: string;
  scope?: ScopeOptions;
  /** Replaces the global fetch (tests, custom agents). */
  fetch?: FetchFunction;
  /**
   * Sending again after 429 `rate_limited` (default: up to 5 times, when Retry-After is at most 10 s; a
   * longer wait, such as a login lockout, is surfaced at once). Also the realtime clients' default. False: never.
   */
  retry?: RetryOptions | false;
}

export type FetchFunction = (input: string, init: RequestInit) => Promise<Response>;

type Query = Record<string, string | number | undefined>;

const path = (strings: TemplateStringsArray, ...ids: string[]) =>
  strings.reduce((out, part, i) => out + part + (i < ids.length ? encodeURIComponent(ids[i]) : ""), "");

export class RestClient {
  readonly baseUrl: string;
  protected token?: string;
  protected apiKey?: string;
  protected readonly scope: ScopeOptions;
  private readonly fetchImpl: FetchFunction;
  protected readonly retry: RetryOptions | false | undefined;

  constructor(options: RestOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.token = options.token;
    this.apiKey = options.apiKey;
    this.scope = options.scope ?? {};
    this.fetchImpl = options.fetch ?? ((input, init) => fetch(input, init));
    this.retry = options.retry;
  }

  /** Headers carrying the credential and scope; the WebSocket upgrade sends the same. */
  authHeaders(): Record<string, string> {
    const headers: Record<string, string> = {};
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    if (this.apiKey) headers["x-api-key"] = this.apiKey;
    const { orgId, serviceId, env, dataClass, policyRef, asUserId } = this.scope;
    if (orgId) headers["x-org-id"] = orgId;
    if (serviceId) headers["x-service-id"] = serviceId;
    if (env) headers["x-env"] = env;
    if (dataClass) headers["x-data-class"] = dataClass;
    if (policyRef) headers["x-policy-ref"] = policyRef;
    if (asUserId) headers["x-as-user-id"] = asUserId;
    return headers;
  }

  protected async call<T>(method: string, route: string, options: { body?: unknown; query?: Query } = {}): Promise<T> {
    let url = this.baseUrl + route;
    if (options.query) {
      const params = new URLSearchParams();
      for (const [key, value] of Object.entries(options.query)) if (value !== undefined) params.set(key, String(value));
      const text = params.toString();
      if (text) url += `?${text}`;
    }
    const headers = this.authHeaders();
    if (options.body !== undefined) headers["content-type"] = "application/json";
    const body = options.body === undefined ? undefined : JSON.stringify(options.body);
    const { attempts, maxDelayMs } = retryOptions(this.retry);
    for (let attempt = 0; ; attempt++) {
      const response = await this.fetchImpl(url, { method, headers, body });
      if (response.status === 429 && attempt < attempts) {
        const delayMs = retryAfterMs(response.headers.get("retry-after")) ?? fallbackDelayMs(attempt);
        if (delayMs <= maxDelayMs) {
          // The refused request was not handled: sending it again is safe whatever its method.
          await response.body?.cancel();
          await sleep(delayMs);
          continue;
        }
      }
      return this.answer<T>(response);
    }
  }

  private async answer<T>(response: Response): Promise<T> {
    const text = await response.text();
    let body: any;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = undefined;
    }
    if (!response.ok) {
      const retryAfter = Number(response.headers.get("retry-after")) || undefined;
      throw new ApiError(response.status, body?.code ?? "http_error", body?.error ?? `HTTP ${response.status}`, retryAfter);
    }
    return body as T;
  }

  // System

  health(): Promise<Health> {
    return this.call("GET", "/api/health");
  }

  bootstrap(): Promise<Bootstrap> {
    return this.call("GET", "/api/bootstrap");
  }

  // Authentication

  /** Logs in and keeps the session token for later calls and for the WebSocket. */
  async login(email: string, password: string): Promise<LoginResult> {
    const result = await this.call<LoginResult>("POST", "/api/auth/login", { body: { email, password } });
    this.token = result.token;
    return result;
  }

  async logout(): Promise<void> {
    await this.call("POST", "/api/auth/logout");
    this.token = undefined;
  }

  session(): Promise<AuthSession> {
    return this.call("GET", "/api/auth/session");
  }

  me(): Promise<PrincipalInfo> {
    return this.call("GET", "/api/auth/me");
  }

  // Conversations

  listConversations(options: { orgId?: string; limit?: number; offset?: number } = {}): Promise<ConversationSummary[]> {
    return this.call("GET", "/api/conversations", { query: options });
  }

  createConversation(input: CreateConversationInput): Promise<ConversationWithParticipants> {
    return this.call("POST", "/api/conversations", { body: input });
  }

  getConversation(conversationId: string): Promise<ConversationWithParticipants> {
    return this.call("GET", path`/api/conversations/${conversationId}`);
  }

  updateConversation(conversationId: string, input: UpdateConversationInput): Promise<Conversation> {
    return this.call("PATCH", path`/api/conversations/${conversationId}`, { body: input });
  }

  async deleteConversation(conversationId: string): Promise<void> {
    await this.call("DELETE", path`/api/conversations/${conversationId}`);
  }

  // Webhooks

  createWebhook(input: CreateWebhookInput): Promise<Webhook & { secret: string }> {
    return this.call("POST", "/api/webhooks", { body: input });
  }

  listWebhooks(): Promise<Webhook[]> {
    return this.call("GET", "/api/webhooks");
  }

  getWebhook(webhookId: string): Promise<Webhook> {
    return this.call("GET", path`/api/webhooks/${webhookId}`);
  }

  updateWebhook(webhookId: string, input: UpdateWebhookInput): Promise<Webhook> {
    return this.call("PATCH", path`/api/webhooks/${webhookId}`, { body: input });
  }

  async deleteWebhook(webhookId: string): Promise<void> {
    await this.call("DELETE", path`/api/webhooks/${webhookId}`);
  }

  testWebhook(webhookId: string): Promise<WebhookDelivery> {
    return this.call("POST", path`/api/webhooks/${webhookId}/test`, { body: {} });
  }

  listWebhookDeliveries(webhookId: string, options: { status?: "pending" | "delivered" | "failed"; limit?: number } = {}): Promise<WebhookDelivery[]> {
    return this.call("GET", path`/api/webhooks/${webhookId}/deliveries`, { query: options });
  }

  retryWebhookDelivery(webhookId: string, deliveryId: string): Promise<WebhookDelivery> {
    return this.call("POST", path`/api/webhooks/${webhookId}/deliveries/${deliveryId}/retry`, { body: {} });
  }

  // Runs

  createRun(conversationId: string, input: StartRunInput = {}): Promise<Run> {
    return this.call("POST", path`/api/conversations/${conversationId}/runs`, { body: input });
  }

  listRuns(conversationId: string, options: { state?: "active" | "paused" | "preempted" | "ended"; limit?: number; offset?: number } = {}): Promise<Run[]> {
    return this.call("GET", path`/api/conversations/${conversationId}/runs`, { query: options });
  }

  getRun(conversationId: string, runId: string): Promise<RunWithTransitions> {
    return this.call("GET", path`/api/conversations/${conversationId}/runs/${runId}`);
  }

  completeRun(conversationId: string, runId: string): Promise<Run> {
    return this.call("POST", path`/api/conversations/${conversationId}/runs/${runId}/complete`, { body: {} });
  }

  failRun(conversationId: string, runId: string, reason?: string): Promise<Run> {
    return this.call("POST", path`/api/conversations/${conversationId}/runs/${runId}/fail`, { body: reason === undefined ? {} : { reason } });
  }

  // Messages

  listMessages(conversationId: string, options: ListMessagesOptions = {}): Promise<Message[]> {
    return this.call("GET", path`/api/conversations/${conversationId}/messages`, { query: { ...options } });
  }

  sendMessage(conversationId: string, input: SendMessageInput): Promise<Message> {
    return this.call("POST", path`/api/conversations/${conversationId}/messages`, { body: input });
  }

  editMessage(conversationId: string, messageId: string, input: EditMessageInput): Promise<Message> {
    return this.call("PATCH", path`/api/conversations/${conversationId}/messages/${messageId}`, { body: input });
  }

  async deleteMessage(conversationId: string, messageId: string): Promise<void> {
    await this.call("DELETE", path`/api/conversations/${conversationId}/messages/${messageId}`);
  }

  messageHistory(conversationId: string, messageId: string): Promise<{ message_id: string; versions: MessageVersion[] }> {
    return this.call("GET", path`/api/conversations/${conversationId}/messages/${messageId}/history`);
  }

  sendControl(conversationId: string, input: SendControlInput): Promise<Message> {
    return this.call("POST", path`/api/conversations/${conversationId}/control`, { body: input });
  }

  // Participants

  joinConversation(conversationId: string): Promise<Participant> {
    return this.call("POST", path`/api/conversations/${conversationId}/join`);
  }

  async leaveConversation(conversationId: string): Promise<void> {
    await this.call("POST", path`/api/conversations/${conversationId}/leave`);
  }

  addParticipant(conversationId: string, input: { userId: string; userType?: ParticipantType }): Promise<Participant> {
    return this.call("POST", path`/api/conversations/${conversationId}/participants`, { body: input });
  }

  async removeParticipant(conversationId: string, userId: string): Promise<void> {
    await this.call("DELETE", path`/api/conversations/${conversationId}/participants/${userId}`);
  }

  changeRole(conversationId: string, userId: string, role: ConversationRole): Promise<Participant> {
    return this.call("PATCH", path`/api/conversations/${conversationId}/participants/${userId}`, { body: { role } });
  }

  // Admin (system admins)

  adminListConversations(
    options: { orgId?: string; type?: "private" | "group"; limit?: number; offset?: number } = {},
  ): Promise<AdminConversationList> {
    return this.call("GET", "/api/admin/conversations", { query: options });
  }

  adminGetConversation(conversationId: string): Promise<AdminConversationDetail> {
    return this.call("GET", path`/api/admin/conversations/${conversationId}`);
  }

  async adminDeleteConversation(conversationId: string): Promise<void> {
    await this.call("DELETE", path`/api/admin/conversations/${conversationId}`);
  }

  adminUserConversations(userId: string, options: { orgId?: string; limit?: number; offset?: number } = {}): Promise<Conversation[]> {
    return this.call("GET", path`/api/admin/users/${userId}/conversations`, { query: options });
  }

  adminAddParticipant(
    conversationId: string,
    input: { userId: string; userType?: ParticipantType; role: ConversationRole },
  ): Promise<Participant> {
    return this.call("POST", path`/api/admin/conversations/${conversationId}/participants`, { body: input });
  }

  async adminRemoveParticipant(conversationId: string, userId: string): Promise<void> {
    await this.call("DELETE", path`/api/admin/conversations/${conversationId}/participants/${userId}`);
  }

  adminStats(options: { orgId?: string } = {}): Promise<AdminStats> {
    return this.call("GET", "/api/admin/stats", { query: options });
  }
}
