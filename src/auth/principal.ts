/**
 * Who is asking. Resolved once per request (and once per WebSocket connection) from its credential, then
 * handed to every domain function, which decides with the helpers below.
 */
export type PrincipalType = "user" | "agent" | "service";
export type OrgRole = "admin" | "member";

export interface OrgMembership {
  id: string;
  role: OrgRole;
}

export interface Principal {
  id: string;
  type: PrincipalType;
  name?: string;
  email?: string;
  orgs: OrgMembership[];
  entitlements: string[];
  isSuperAdmin: boolean;
  /**
   * Set when a service acts for this principal (X-As-User-Id, src/auth/act-as.ts): who really asked.
   * The credential below is then that caller's.
   */
  actedBy?: { id: string; type: PrincipalType };
  /** The credential this principal was resolved from; the realtime layer closes sockets when it is revoked. */
  credential: {
    kind: "session" | "api_key" | "remote_token" | "remote_api_key";
    id: string;
    expiresAt?: number;
  };
}

export const ENTITLEMENT = {
  interrupt: "cap:messaging.interrupt",
  route: "cap:messaging.route",
  observe: "cap:messaging.observe",
  admin: "messaging:admin",
  /** Acting for another principal; `messaging:act-as:<prefix>` limits it to ids starting with the prefix. */
  actAs: "messaging:act-as",
} as const;

export function hasEntitlement(principal: Principal, entitlement: string): boolean {
  return principal.isSuperAdmin || principal.entitlements.includes(entitlement);
}

/** Super admins and holders of `messaging:admin` run the admin API and may watch any conversation. */
export function isSystemAdmin(principal: Principal): boolean {
  return principal.isSuperAdmin || principal.entitlements.includes(ENTITLEMENT.admin);
}

export function isOrgMember(principal: Principal, orgId: string): boolean {
  return principal.isSuperAdmin || principal.orgs.some((o) => o.id === orgId);
}

/** The public view of a principal, as `/api/auth/me` and login answer it. */
export function describePrincipal(principal: Principal) {
  return {
    id: principal.id,
    type: principal.type,
    name: principal.name ?? null,
    email: principal.email ?? null,
    orgs: principal.orgs,
    entitlements: principal.entitlements,
    isSuperAdmin: principal.isSuperAdmin,
    // Who really asks, while a service acts for this principal (X-As-User-Id).
    ...(principal.actedBy && { actedBy: principal.actedBy }),
  };
}
