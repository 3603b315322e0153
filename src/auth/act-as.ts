/**
 * A service acting for its agents: `X-As-User-Id: <principal>` (or `?asUserId=` on the WebSocket upgrade)
 * makes the request the named principal's, for callers entitled to it. Everything the request writes is
 * then that principal's (sender, creator, participant), and messages record who really asked in
 * `metadata.actedBy`.
 *
 * Rules (docs/api.md, Acting for another principal):
 * - the caller holds `messaging:act-as`, or `messaging:act-as:<prefix>` for ids starting with `<prefix>`;
 *   without it the header is refused (403 act_as_forbidden), never ignored;
 * - the target exists, is not disabled, and belongs to at least one of the caller's organisations;
 * - the acting principal keeps the caller's credential (revoking it ends the acting too) and entitlements,
 *   minus acting and the admin API, in the organisations both share.
 */
import { fail } from "../core/errors";
import type { IdentityProvider } from "./identity";
import { ENTITLEMENT, isOrgMember, type Principal } from "./principal";

export const ACT_AS_HEADER = "x-as-user-id";
export const ACT_AS_QUERY = "asUserId";
const MAX_ID_LENGTH = 255;

/** Whether the caller's entitlements allow acting for `targetId` at all (before looking it up). */
export function mayActAs(caller: Principal, targetId: string): boolean {
  if (caller.isSuperAdmin) return true;
  const prefix = `${ENTITLEMENT.actAs}:`;
  return caller.entitlements.some(
    (e) => e === ENTITLEMENT.actAs || (e.startsWith(prefix) && e.length > prefix.length && targetId.startsWith(e.slice(prefix.length))),
  );
}

export async function actAs(identity: IdentityProvider, caller: Principal, rawTargetId: string): Promise<Principal> {
  const targetId = rawTargetId.trim();
  if (targetId.length === 0 || targetId.length > MAX_ID_LENGTH) {
    throw fail.invalid_header(`X-As-User-Id must be a principal id of 1 to ${MAX_ID_LENGTH} characters`);
  }
  if (caller.actedBy) throw fail.act_as_forbidden("Acting for a principal cannot be chained");
  if (!mayActAs(caller, targetId)) {
    throw fail.act_as_forbidden(`Acting for another principal needs the ${ENTITLEMENT.actAs} entitlement`);
  }
  if (targetId === caller.id) return caller;
  const target = await identity.findPrincipal?.(targetId);
  // Unknown, disabled and foreign principals get the same answer: the caller learns nothing about them.
  const shared = target && !target.disabled ? target.orgs.filter((org) => isOrgMember(caller, org.id)) : [];
  if (!target || shared.length === 0) {
    throw fail.act_as_forbidden("You may act only for an enabled principal of your organisations");
  }
  return {
    id: target.id,
    type: target.type,
    name: target.name,
    email: target.email,
    orgs: shared,
    entitlements: caller.entitlements.filter((e) => e !== ENTITLEMENT.admin && e !== ENTITLEMENT.actAs && !e.startsWith(`${ENTITLEMENT.actAs}:`)),
    isSuperAdmin: false,
    actedBy: { id: caller.id, type: caller.type },
    credential: caller.credential,
  };
}

/**
 * `metadata.actedBy` is the server's: who asked when a service acted for the sender (X-As-User-Id), and
 * absent otherwise, whatever the caller put there. Applied to every message and control event stored.
 */
export function withActor(metadata: Record<string, unknown>, principal: Pick<Principal, "actedBy">): Record<string, unknown> {
  if (principal.actedBy) return { ...metadata, actedBy: principal.actedBy };
  if (!("actedBy" in metadata)) return metadata;
  const { actedBy: _claimed, ...rest } = metadata;
  return rest;
}

/**
 * The organisations whose conversations an acting principal reaches: the ones it shares with the caller.
 * Undefined when nobody acts, since a principal's own participation is then the only rule. Conversations
 * of no organisation stay in reach: they belong to no organisation the caller could be kept out of.
 */
export function actingOrgReach(principal: Pick<Principal, "actedBy" | "orgs">): string[] | undefined {
  return principal.actedBy ? principal.orgs.map((o) => o.id) : undefined;
}

export function withinActingReach(principal: Pick<Principal, "actedBy" | "orgs">, orgId: string | null): boolean {
  const reach = actingOrgReach(principal);
  return !reach || orgId === null || reach.includes(orgId);
}

/** A participant acted for may still not be reached there: the conversation is of another organisation. */
export function requireActingReach(principal: Pick<Principal, "actedBy" | "orgs">, orgId: string | null): void {
  if (!withinActingReach(principal, orgId)) {
    throw fail.org_forbidden("Acting for another principal reaches only conversations of your organizations");
  }
}
