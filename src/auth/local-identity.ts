/**
 * Local identity: principals, sessions and API keys in the product's own database. A credential costs one
 * indexed query the first time and a map lookup after that (see CredentialCache); it never costs a
 * password hash.
 */
import type { AuthChange } from "./identity";
import { randomUUID } from "node:crypto";
import { and, eq, isNull, sql } from "drizzle-orm";
import type { Config } from "../config";
import { rows, type Db } from "../db/client";
import { sessions } from "../db/schema";
import type { EventBus } from "../core/event-bus";
import { CredentialCache } from "./credential-cache";
import type { AuthOutcome, AuthReply, Credentials, IdentityProvider, LoginRequest, PrincipalRecord } from "./identity";
import { SESSION_COOKIE } from "./identity";
import { LoginLimiter, rateLimitedReply } from "./login-limiter";
import { describePrincipal, type OrgMembership, type Principal } from "./principal";
import {
  formatSessionToken,
  hashSecret,
  newSecret,
  parseApiKey,
  parseSessionToken,
  sameHash,
} from "./secrets";

interface PrincipalColumns {
  principal_id: string;
  principal_type: Principal["type"];
  principal_name: string | null;
  email: string | null;
  is_super_admin: boolean;
  entitlements: string[];
  disabled_at: Date | null;
  memberships: OrgMembership[] | null;
}

interface SessionLookup extends PrincipalColumns {
  token_hash: string;
  expires_at: Date;
  revoked_at: Date | null;
}

interface KeyLookup extends PrincipalColumns {
  key_id: string;
  key_hash: string;
  expires_at: Date | null;
  revoked_at: Date | null;
  scopes: string[];
  key_orgs: OrgMembership[];
}

const PRINCIPAL_SELECT = sql`
  p.id as principal_id, p.type as principal_type, p.name as principal_name, p.email, p.is_super_admin,
  p.entitlements, p.disabled_at,
  (select coalesce(json_agg(json_build_object('id', m.org_id, 'role', m.role) order by m.org_id), '[]'::json)
     from memberships m where m.principal_id = p.id) as memberships`;

const fail = (code: Exclude<AuthOutcome, { ok: true }>["code"], message: string): AuthOutcome => ({ ok: false, code, message });

/** Postgres text[] arrive as arrays from both drivers; be tolerant of the literal form anyway. */
function textArray(value: unknown): string[] {
  if (Array.isArray(value)) return value as string[];
  if (typeof value === "string" && value.startsWith("{")) {
    return value.slice(1, -1).split(",").filter(Boolean).map((s) => s.replace(/^"|"$/g, ""));
  }
  return [];
}

function jsonValue<T>(value: unknown, fallback: T): T {
  if (value == null) return fallback;
  return (typeof value === "string" ? JSON.parse(value) : value) as T;
}

export class LocalIdentity implements IdentityProvider {
  readonly mode = "local" as const;
  private readonly cache: CredentialCache;
  private readonly limiter: LoginLimiter;
  private dummyHash?: Promise<string>;
  /** Principals looked up for acting on their behalf, kept as long as credentials are. */
  private readonly records = new Map<string, { record: PrincipalRecord; until: number }>();

  constructor(
    private readonly db: Db,
    private readonly config: Config,
    private readonly changes: EventBus<AuthChange>,
  ) {
    this.cache = new CredentialCache(config.credentialCacheMs);
    this.limiter = new LoginLimiter(config.loginMaxFailures, config.loginWindowMs);
    this.cache.followChanges(changes);
    changes.on(
      "act-as principal cache",
      (change) => {
        if (change.kind === "principal_changed") this.records.delete(change.principalId);
      },
      { inline: true },
    );
  }

  async findPrincipal(id: string): Promise<PrincipalRecord | undefined> {
    const now = Date.now();
    const cached = this.records.get(id);
    if (cached && cached.until > now) return cached.record;
    const [row] = await rows<PrincipalColumns>(this.db, sql`select ${PRINCIPAL_SELECT} from principals p where p.id = ${id}`);
    if (!row) return undefined;
    const { entitlements: _own, isSuperAdmin: _admin, ...base } = this.principalOf(row);
    const record: PrincipalRecord = { ...base, disabled: row.disabled_at !== null };
    if (this.config.credentialCacheMs > 0) {
      if (this.records.size >= 10_000) this.records.clear();
      this.records.set(id, { record, until: now + this.config.credentialCacheMs });
    }
    return record;
  }

  invalidate(target: { credentialId?: string; principalId?: string }): void {
    this.cache.invalidate(target);
    if (target.principalId) this.records.delete(target.principalId);
  }

  async authenticate(credentials: Credentials): Promise<AuthOutcome | undefined> {
    // Agents often send their API key as a bearer token: accept either place.
    const apiKey = credentials.apiKey ?? (credentials.bearer?.startsWith("smk_") ? credentials.bearer : undefined);
    if (apiKey) return this.authenticateApiKey(apiKey);
    const token = credentials.bearer ?? credentials.cookie;
    if (token) return this.authenticateSession(token);
    return undefined;
  }

  private async authenticateSession(token: string): Promise<AuthOutcome> {
    const cached = this.cache.get(token);
    if (cached) return { ok: true, principal: cached };
    const parsed = parseSessionToken(token);
    if (!parsed) return fail("invalid_credentials", "Invalid session token");
    const [row] = await rows<SessionLookup>(this.db, sql`
      select s.token_hash, s.expires_at, s.revoked_at, ${PRINCIPAL_SELECT}
      from sessions s join principals p on p.id = s.principal_id
      where s.id = ${parsed.sessionId}`);
    if (!row || !sameHash(row.token_hash, hashSecret(parsed.secret))) {
      return fail("invalid_credentials", "Invalid session token");
    }
    if (row.revoked_at) return fail("credential_revoked", "Session has been revoked");
    const expiresAt = new Date(row.expires_at).getTime();
    if (expiresAt <= Date.now()) return fail("credential_expired", "Session has expired");
    if (row.disabled_at) return fail("principal_disabled", "Account is disabled");
    const principal: Principal = {
      ...this.principalOf(row),
      credential: { kind: "session", id: parsed.sessionId, expiresAt },
    };
    this.cache.set(token, principal);
    return { ok: true, principal };
  }

  private async authenticateApiKey(key: string): Promise<AuthOutcome> {
    const cached = this.cache.get(key);
    if (cached) return { ok: true, principal: cached };
    const parsed = parseApiKey(key);
    if (!parsed) return fail("invalid_credentials", "Invalid API key");
    const [row] = await rows<KeyLookup>(this.db, sql`
      select k.id as key_id, k.key_hash, k.expires_at, k.revoked_at, k.scopes, k.orgs as key_orgs, ${PRINCIPAL_SELECT}
      from api_keys k join principals p on p.id = k.principal_id
      where k.prefix = ${parsed.prefix}`);
    if (!row || !sameHash(row.key_hash, hashSecret(key))) return fail("invalid_credentials", "Invalid API key");
    if (row.revoked_at) return fail("credential_revoked", "API key has been revoked");
    const expiresAt = row.expires_at ? new Date(row.expires_at).getTime() : undefined;
    if (expiresAt !== undefined && expiresAt <= Date.now()) return fail("credential_expired", "API key has expired");
    if (row.disabled_at) return fail("principal_disabled", "Principal is disabled");
    const base = this.principalOf(row);
    const keyOrgs = jsonValue<OrgMembership[]>(row.key_orgs, []);
    // A key carries its own grants: its scopes, and its orgs (or its owner's memberships when it names
    // none). It never carries super-admin power; `messaging:admin` is the scope for the admin API.
    const principal: Principal = {
      ...base,
      orgs: keyOrgs.length > 0 ? keyOrgs : base.orgs,
      entitlements: textArray(row.scopes),
      isSuperAdmin: false,
      credential: { kind: "api_key", id: row.key_id, expiresAt },
    };
    this.cache.set(key, principal);
    return { ok: true, principal };
  }

  private principalOf(row: PrincipalColumns): Omit<Principal, "credential"> {
    return {
      id: row.principal_id,
      type: row.principal_type,
      name: row.principal_name ?? undefined,
      email: row.email ?? undefined,
      orgs: jsonValue<OrgMembership[]>(row.memberships, []),
      entitlements: textArray(row.entitlements),
      isSuperAdmin: row.is_super_admin,
    };
  }

  async login(request: LoginRequest): Promise<AuthReply> {
    const email = request.email.trim().toLowerCase();
    const wait = this.limiter.retryAfterSeconds(email, request.ip);
    if (wait > 0) return rateLimitedReply(wait);
    const [user] = await rows<{ id: string; password_hash: string | null; disabled_at: Date | null }>(
      this.db,
      sql`select id, password_hash, disabled_at from principals where lower(email) = ${email} and type = 'user'`,
    );
    // Unknown accounts verify against a dummy hash so that both failures take the same time.
    const hash = user?.password_hash ?? (await this.dummyPasswordHash());
    const valid = await Bun.password.verify(request.password, hash).catch(() => false);
    if (!user || !user.password_hash || !valid || user.disabled_at) {
      this.limiter.recordFailure(email, request.ip);
      return {
        status: 401,
        body: { error: "Invalid email or password", code: "invalid_credentials" },
        setCookies: [],
      };
    }
    this.limiter.recordSuccess(email, request.ip);

    const sessionId = randomUUID();
    const secret = newSecret();
    const expiresAt = new Date(Date.now() + this.config.sessionTtlMs);
    await this.db.insert(sessions).values({
      id: sessionId,
      principal_id: user.id,
      token_hash: hashSecret(secret),
      expires_at: expiresAt,
      ip: request.ip.slice(0, 100),
      user_agent: request.userAgent?.slice(0, 500),
    });
    const token = formatSessionToken(sessionId, secret);
    const outcome = await this.authenticateSession(token);
    if (!outcome.ok) throw new Error("a session just created did not authenticate");
    return {
      status: 200,
      body: { token, user: describePrincipal(outcome.principal), expiresAt: expiresAt.toISOString() },
      setCookies: [this.sessionCookie(token, Math.floor(this.config.sessionTtlMs / 1000))],
    };
  }

  async logout(credentials: Credentials): Promise<AuthReply> {
    const token = credentials.bearer ?? credentials.cookie;
    const parsed = token ? parseSessionToken(token) : null;
    if (parsed) {
      const [session] = await this.db
        .select({ token_hash: sessions.token_hash })
        .from(sessions)
        .where(eq(sessions.id, parsed.sessionId));
      if (session && sameHash(session.token_hash, hashSecret(parsed.secret))) {
        await this.db
          .update(sessions)
          .set({ revoked_at: new Date() })
          .where(and(eq(sessions.id, parsed.sessionId), isNull(sessions.revoked_at)));
        this.changes.emit({ kind: "credential_revoked", credentialId: parsed.sessionId });
        return { status: 200, body: { ok: true, revoked: true }, setCookies: [this.sessionCookie("", 0)] };
      }
    }
    // Nothing was revoked; say why when the caller may think otherwise.
    const key = credentials.apiKey ?? (credentials.bearer && parseApiKey(credentials.bearer) ? credentials.bearer : undefined);
    const body = key
      ? { ok: true, revoked: false, note: "An API key is not a session: logout revokes nothing. An operator revokes keys (symbia-messaging keys revoke)." }
      : { ok: true, revoked: false };
    return { status: 200, body, setCookies: [this.sessionCookie("", 0)] };
  }

  private sessionCookie(value: string, maxAgeSeconds: number): string {
    const parts = [`${SESSION_COOKIE}=${value}`, "Path=/", "HttpOnly", "SameSite=Lax", `Max-Age=${maxAgeSeconds}`];
    if (this.config.cookieSecure) parts.push("Secure");
    return parts.join("; ");
  }

  private dummyPasswordHash(): Promise<string> {
    this.dummyHash ??= Bun.password.hash(newSecret(), { algorithm: "argon2id" });
    return this.dummyHash;
  }
}
