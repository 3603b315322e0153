/**
 * Remote identity (IDENTITY_URL set): the Symbia Identity service owns users, sessions and keys. Login
 * and logout are proxied to it unchanged (status, body, cookies), logins behind the same failed-login
 * limit as local ones; credentials are checked with its
 * introspection endpoints and the positive answers kept for IDENTITY_CACHE_MS, so a busy client costs the
 * Identity service one call per cache period rather than one per request.
 *
 * Failures are never cached: an unknown or inactive credential is asked about again next time, and when
 * the Identity service is down or slow the request fails with 502 identity_unavailable (rather than 401,
 * which would tell a client with a good credential to throw it away).
 */
import type { Config } from "../config";
import type { EventBus } from "../core/event-bus";
import { fail } from "../core/errors";
import { describeError, log } from "../log";
import { CredentialCache } from "./credential-cache";
import { LoginLimiter, rateLimitedReply } from "./login-limiter";
import type { AuthOutcome, AuthReply, Credentials, IdentityProvider, LoginRequest } from "./identity";
import type { AuthChange } from "./identity";
import type { OrgMembership, Principal, PrincipalType } from "./principal";
import { hashSecret } from "./secrets";

/** POST /api/auth/introspect {token} */
interface Introspection {
  active?: boolean;
  sub?: string;
  type?: string;
  agentId?: string;
  email?: string;
  name?: string;
  organizations?: { id?: unknown; role?: unknown }[];
  entitlements?: unknown;
  capabilities?: unknown;
  isSuperAdmin?: boolean;
  /** Expiry in seconds since the epoch, when the service tells it. */
  exp?: number;
}

/** POST /api/auth/verify-api-key {apiKey} */
interface ApiKeyVerification {
  valid?: boolean;
  keyId?: string;
  name?: string;
  orgId?: string;
  scopes?: unknown;
  creator?: { id?: string; type?: string; name?: string; email?: string };
  expiresAt?: string;
}

/** Statuses by which the Identity service says "no" about a credential, as opposed to failing. */
const NEGATIVE_STATUSES = new Set([400, 401, 403]);
const JWT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

const identityUnavailable = () => fail.identity_unavailable("The identity service is unavailable");
const invalid = (message: string): AuthOutcome => ({ ok: false, code: "invalid_credentials", message });

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === "string" && v.length > 0) : [];
}

function memberships(value: Introspection["organizations"]): OrgMembership[] {
  if (!Array.isArray(value)) return [];
  return value
    .filter((o) => typeof o?.id === "string" && o.id)
    .map((o) => ({ id: o.id as string, role: o.role === "admin" || o.role === "owner" ? "admin" : "member" }));
}

/** A string the Identity service sent, or nothing: the answers of /api/auth/me are checked against their schema. */
function stringOrNone(value: unknown): string | undefined {
  return typeof value === "string" ? value : undefined;
}

function principalType(value: unknown, fallback: PrincipalType): PrincipalType {
  return value === "user" || value === "agent" || value === "service" ? value : fallback;
}

/** A stable, non-secret id for a token, used to revoke it from caches and sockets after logout. */
export function remoteTokenId(token: string): string {
  return `rt_${hashSecret(token).slice(0, 32)}`;
}

export class RemoteIdentity implements IdentityProvider {
  readonly mode = "remote" as const;
  private readonly baseUrl: string;
  private readonly cache: CredentialCache;
  private readonly limiter: LoginLimiter;
  /** Concurrent requests with the same credential share one call to the Identity service. */
  private readonly inFlight = new Map<string, Promise<AuthOutcome>>();

  constructor(
    private readonly config: Config,
    private readonly changes: EventBus<AuthChange>,
  ) {
    if (!config.identityUrl) throw new Error("RemoteIdentity needs IDENTITY_URL");
    this.baseUrl = config.identityUrl;
    this.cache = new CredentialCache(config.identityCacheMs);
    this.cache.followChanges(changes);
    this.limiter = new LoginLimiter(config.loginMaxFailures, config.loginWindowMs);
  }

  invalidate(target: { credentialId?: string; principalId?: string }): void {
    this.cache.invalidate(target);
  }

  async authenticate(credentials: Credentials): Promise<AuthOutcome | undefined> {
    if (credentials.apiKey) {
      const apiKey = credentials.apiKey;
      return this.resolve(`key:${apiKey}`, () => this.verifyApiKey(apiKey));
    }
    if (credentials.bearer) {
      const token = credentials.bearer;
      return this.resolve(`token:${token}`, async () => {
        const outcome = await this.introspect(token);
        // Agents and services often send their API key as a bearer token. A JWT is never an API key,
        // so only opaque strings get the second question.
        if (!outcome.ok && !JWT.test(token)) {
          const asKey = await this.verifyApiKey(token);
          if (asKey.ok) return asKey;
        }
        return outcome;
      });
    }
    if (credentials.cookie) {
      const token = credentials.cookie;
      return this.resolve(`token:${token}`, () => this.introspect(token));
    }
    return undefined;
  }

  private async resolve(cacheKey: string, lookup: () => Promise<AuthOutcome>): Promise<AuthOutcome> {
    const cached = this.cache.get(cacheKey);
    if (cached) return { ok: true, principal: cached };
    const running = this.inFlight.get(cacheKey);
    if (running) return running;
    const pending = lookup()
      .then((outcome) => {
        if (outcome.ok) this.cache.set(cacheKey, outcome.principal);
        return outcome;
      })
      .finally(() => this.inFlight.delete(cacheKey));
    this.inFlight.set(cacheKey, pending);
    return pending;
  }

  private async introspect(token: string): Promise<AuthOutcome> {
    const answer = await this.ask<Introspection>("/api/auth/introspect", { token });
    if (!answer?.active) return invalid("Invalid or expired token");
    const type = principalType(answer.type, "user");
    // Agents are known by their agent id and act with their capabilities.
    const id = type === "agent" ? (answer.agentId ?? answer.sub) : answer.sub;
    if (typeof id !== "string" || !id) throw identityUnavailable();
    const principal: Principal = {
      id,
      type,
      name: stringOrNone(answer.name),
      email: stringOrNone(answer.email),
      orgs: memberships(answer.organizations),
      entitlements: type === "agent" ? strings(answer.capabilities ?? answer.entitlements) : strings(answer.entitlements),
      isSuperAdmin: answer.isSuperAdmin === true,
      credential: {
        kind: "remote_token",
        id: remoteTokenId(token),
        expiresAt: typeof answer.exp === "number" ? answer.exp * 1000 : undefined,
      },
    };
    return { ok: true, principal };
  }

  /**
   * A key acts as the principal that created it when the Identity service names one (so what a key
   * sends is attributed to its owner, as with local keys); a key without a creator is a service of its
   * own, known as `key:<keyId>`. Its grants are the key's own: its org and its scopes.
   */
  private async verifyApiKey(apiKey: string): Promise<AuthOutcome> {
    const answer = await this.ask<ApiKeyVerification>("/api/auth/verify-api-key", { apiKey });
    if (!answer?.valid) return invalid("Invalid API key");
    const keyId = typeof answer.keyId === "string" && answer.keyId ? answer.keyId : remoteTokenId(apiKey);
    const creator = answer.creator && typeof answer.creator.id === "string" && answer.creator.id ? answer.creator : undefined;
    const expiresAt = answer.expiresAt ? Date.parse(answer.expiresAt) : NaN;
    const principal: Principal = {
      id: creator?.id ?? `key:${keyId}`,
      type: principalType(creator?.type, "service"),
      name: stringOrNone(creator?.name) ?? stringOrNone(answer.name),
      email: stringOrNone(creator?.email),
      orgs: typeof answer.orgId === "string" && answer.orgId ? [{ id: answer.orgId, role: "member" }] : [],
      entitlements: strings(answer.scopes),
      isSuperAdmin: false,
      credential: { kind: "remote_api_key", id: keyId, expiresAt: Number.isFinite(expiresAt) ? expiresAt : undefined },
    };
    return { ok: true, principal };
  }

  /** The parsed answer, undefined when the service declines the credential; throws 502 when it fails. */
  private async ask<T>(path: string, body: unknown): Promise<T | undefined> {
    let response: Response;
    try {
      response = await fetch(this.baseUrl + path, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json" },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(this.config.identityTimeoutMs),
      });
    } catch (error) {
      log.warn("identity service unreachable", { path, ...describeError(error) });
      throw identityUnavailable();
    }
    if (NEGATIVE_STATUSES.has(response.status)) {
      await response.body?.cancel();
      return undefined;
    }
    if (!response.ok) {
      await response.body?.cancel();
      log.warn("identity service failed", { path, status: response.status });
      throw identityUnavailable();
    }
    try {
      return (await response.json()) as T;
    } catch {
      log.warn("identity service answered something other than JSON", { path });
      throw identityUnavailable();
    }
  }

  /** Proxied, behind the same failed-login limit as local logins (the Identity service may have its own). */
  async login(request: LoginRequest, raw: Request): Promise<AuthReply> {
    const wait = this.limiter.retryAfterSeconds(request.email, request.ip);
    if (wait > 0) return rateLimitedReply(wait);
    const reply = await this.forward("/api/auth/login", raw, { email: request.email, password: request.password }, request.ip);
    if (reply.status === 401) this.limiter.recordFailure(request.email, request.ip);
    else if (reply.status >= 200 && reply.status < 300) this.limiter.recordSuccess(request.email, request.ip);
    return reply;
  }

  async logout(credentials: Credentials, raw: Request): Promise<AuthReply> {
    // Forget the token here whatever the Identity service answers: the caller asked to be logged out.
    const token = credentials.bearer ?? credentials.cookie;
    if (token) this.changes.emit({ kind: "credential_revoked", credentialId: remoteTokenId(token) });
    return this.forward("/api/auth/logout", raw, {}, undefined);
  }

  /** Passes a login or logout to the Identity service and its answer back, cookies included. */
  private async forward(path: string, raw: Request, body: unknown, clientIp: string | undefined): Promise<AuthReply> {
    const headers: Record<string, string> = { "content-type": "application/json", accept: "application/json" };
    for (const name of ["authorization", "cookie", "user-agent", "x-request-id"]) {
      const value = raw.headers.get(name);
      if (value) headers[name] = value;
    }
    const forwardedFor = raw.headers.get("x-forwarded-for");
    if (clientIp) headers["x-forwarded-for"] = forwardedFor ? `${forwardedFor}, ${clientIp}` : clientIp;
    let response: Response;
    let text: string;
    try {
      response = await fetch(this.baseUrl + path, {
        method: "POST",
        headers,
        body: JSON.stringify(body),
        redirect: "manual",
        signal: AbortSignal.timeout(this.config.identityTimeoutMs),
      });
      text = await response.text();
    } catch (error) {
      log.warn("identity service unreachable", { path, ...describeError(error) });
      const failure = identityUnavailable();
      return { status: failure.status, body: failure.toBody(), setCookies: [] };
    }
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : {};
    } catch {
      // not JSON: pass the text through
    }
    const passed: Record<string, string> = {};
    const retryAfter = response.headers.get("retry-after");
    if (retryAfter) passed["retry-after"] = retryAfter;
    return { status: response.status, body: parsed, setCookies: response.headers.getSetCookie(), headers: passed };
  }
}
