/**
 * The contract every identity backend fulfils (local tables, or a remote Identity service), and the
 * credential extraction shared by REST and the WebSocket upgrade.
 */
import type { OrgMembership, Principal, PrincipalType } from "./principal";

export interface Credentials {
  bearer?: string;
  apiKey?: string;
  /** Session token read from the `symbia_session` (or `token`) cookie. */
  cookie?: string;
}

/** Announced when a credential or principal changes, so caches and open sockets everywhere can react. */
export type AuthChange =
  | { kind: "credential_revoked"; credentialId: string }
  | { kind: "principal_changed"; principalId: string };

export type AuthFailureCode =
  | "invalid_credentials"
  | "credential_expired"
  | "credential_revoked"
  | "principal_disabled";

export type AuthOutcome =
  | { ok: true; principal: Principal }
  | { ok: false; code: AuthFailureCode; message: string };

export interface LoginRequest {
  email: string;
  password: string;
  ip: string;
  userAgent?: string;
}

/** What the HTTP layer sends back for login/logout: a body, a status and cookies to set. */
export interface AuthReply {
  status: number;
  body: unknown;
  /** Raw Set-Cookie header values. */
  setCookies: string[];
  headers?: Record<string, string>;
}

/** A principal as the directory knows it, without any credential: whom a service may act for. */
export interface PrincipalRecord {
  id: string;
  type: PrincipalType;
  name?: string;
  email?: string;
  orgs: OrgMembership[];
  disabled: boolean;
}

export interface IdentityProvider {
  readonly mode: "local" | "remote";
  /** undefined when no credential was presented at all. */
  authenticate(credentials: Credentials): Promise<AuthOutcome | undefined>;
  login(request: LoginRequest, raw: Request): Promise<AuthReply>;
  logout(credentials: Credentials, raw: Request): Promise<AuthReply>;
  /**
   * A principal by id, for acting on its behalf. Absent on backends that cannot look principals up (the
   * remote Identity service): acting for another principal is then refused.
   */
  findPrincipal?(id: string): Promise<PrincipalRecord | undefined>;
  /** Drop cached answers for a credential or a principal (after revocation, disable, membership change). */
  invalidate(target: { credentialId?: string; principalId?: string }): void;
}

export const SESSION_COOKIE = "symbia_session";
const LEGACY_COOKIE = "token";

function readCookie(header: string | null, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) {
      const value = part.slice(eq + 1).trim();
      try {
        return decodeURIComponent(value) || undefined;
      } catch {
        return value || undefined;
      }
    }
  }
  return undefined;
}

/**
 * Credentials of a request. The WebSocket upgrade also accepts `?token=` and `?apiKey=` because browsers
 * cannot set headers on a socket.
 */
export function extractCredentials(headers: Headers, query?: URLSearchParams): Credentials {
  const credentials: Credentials = {};
  const authorization = headers.get("authorization");
  if (authorization) {
    const match = /^Bearer\s+(.+)$/i.exec(authorization.trim());
    credentials.bearer = match ? match[1].trim() : authorization.trim();
  }
  const apiKey = headers.get("x-api-key");
  if (apiKey) credentials.apiKey = apiKey.trim();
  const cookieHeader = headers.get("cookie");
  const cookie = readCookie(cookieHeader, SESSION_COOKIE) ?? readCookie(cookieHeader, LEGACY_COOKIE);
  if (cookie) credentials.cookie = cookie;
  if (query) {
    const token = query.get("token");
    const key = query.get("apiKey");
    if (token && !credentials.bearer) credentials.bearer = token;
    if (key && !credentials.apiKey) credentials.apiKey = key;
  }
  return credentials;
}

export function hasCredentials(c: Credentials): boolean {
  return Boolean(c.bearer || c.apiKey || c.cookie);
}
