/**
 * Validation of what operators hand to the identity operations. The same checks run whether the input
 * came from the CLI's flags, the admin socket's JSON or a test, so they live beside the operations rather
 * than in the CLI.
 */
import { fail } from "../core/errors";
import type { OrgMembership, PrincipalType } from "./principal";

const MAX_ID = 255;
const NO_SPACE = /^\S+$/;
const EMAIL = /^[^\s@]+@[^\s@]+$/;
const DURATION = /^(\d+)\s*(s|m|h|d|w)$/i;
const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

export function requireEmail(value: unknown): string {
  const email = typeof value === "string" ? value.trim() : "";
  if (!EMAIL.test(email) || email.length > 320) throw fail.invalid_input(`"${String(value ?? "")}" is not an email address`);
  return email;
}

export function requirePassword(value: unknown): string {
  if (typeof value !== "string" || value.length === 0) throw fail.invalid_input("A password is required");
  // Login accepts at most this many characters; a longer password could never be used.
  if (value.length > 1024) throw fail.invalid_input("The password is longer than 1024 characters");
  return value;
}

/** Principal and organization ids are opaque strings (`assistant:support`, a UUID, `acme`), without spaces. */
export function requireId(value: unknown, what: string): string {
  const id = typeof value === "string" ? value.trim() : "";
  if (!id || id.length > MAX_ID || !NO_SPACE.test(id)) {
    throw fail.invalid_input(`${what} must be 1 to ${MAX_ID} characters without spaces, got "${String(value ?? "")}"`);
  }
  return id;
}

export function optionalName(value: unknown): string | undefined {
  if (value === undefined || value === null || value === "") return undefined;
  if (typeof value !== "string" || value.length > MAX_ID) throw fail.invalid_input(`A name is a string of at most ${MAX_ID} characters`);
  return value.trim() || undefined;
}

export function requirePrincipalType(value: unknown): PrincipalType {
  if (value === "user" || value === "agent" || value === "service") return value;
  throw fail.invalid_input(`The principal type must be agent, service or user, got "${String(value ?? "")}"`);
}

/** `acme` or `acme:admin` / `acme:member`, as the CLI's --org takes it. */
export function parseOrgReference(reference: string): OrgMembership {
  const match = /^(.*):(admin|member)$/.exec(reference.trim());
  return match ? { id: requireId(match[1], "An organization id"), role: match[2] as OrgMembership["role"] } : { id: requireId(reference, "An organization id"), role: "member" };
}

export function requireMemberships(value: unknown): OrgMembership[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw fail.invalid_input("orgs must be a list of {id, role}");
  const byId = new Map<string, OrgMembership>();
  for (const item of value) {
    const membership = typeof item === "string" ? parseOrgReference(item) : item;
    const id = requireId(membership?.id, "An organization id");
    const role = membership?.role ?? "member";
    if (role !== "admin" && role !== "member") throw fail.invalid_input(`An organization role is admin or member, got "${String(role)}"`);
    byId.set(id, { id, role });
  }
  return [...byId.values()];
}

export function requireEntitlements(value: unknown): string[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw fail.invalid_input("entitlements must be a list of strings");
  return [...new Set(value.map((e) => requireId(e, "An entitlement")))];
}

/** `90m`, `12h`, `30d`, `2w`, `45s` to milliseconds. */
export function parseDuration(value: unknown): number {
  const match = typeof value === "string" ? DURATION.exec(value.trim()) : null;
  const ms = match ? Number(match[1]) * UNIT_MS[match[2].toLowerCase()] : 0;
  if (!match || ms <= 0 || !Number.isSafeInteger(ms)) {
    throw fail.invalid_input(`"${String(value ?? "")}" is not a duration such as 90m, 12h, 30d or 2w`);
  }
  return ms;
}
