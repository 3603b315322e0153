/**
 * Operator operations on the local identity tables: users, API keys and organizations. No HTTP here: the
 * CLI calls these directly on the database, or through the running server's admin socket, and both paths
 * run the same checks. Every change that can make a credential invalid is announced on the AuthChange
 * bus after it is written, so caches drop it at once (and, on PostgreSQL, other instances through NOTIFY).
 */
import { randomUUID } from "node:crypto";
import { and, eq, inArray, isNull, sql } from "drizzle-orm";
import type { Config } from "../config";
import { rows, type Db, type Executor } from "../db/client";
import { apiKeys, memberships, organizations, principals } from "../db/schema";
import type { EventBus } from "../core/event-bus";
import { AppError, fail, notFound } from "../core/errors";
import { constraintName, sqlState } from "../core/database-errors";
import { log } from "../log";
import {
  optionalName,
  parseDuration,
  requireEmail,
  requireEntitlements,
  requireId,
  requireMemberships,
  requirePassword,
  requirePrincipalType,
} from "./identity-input";
import type { AuthChange } from "./identity";
import type { OrgMembership, PrincipalType } from "./principal";
import { API_KEY_MARK, hashSecret, newApiKey } from "./secrets";

export interface NewUser {
  email: string;
  password: string;
  name?: string;
  orgs?: OrgMembership[];
  entitlements?: string[];
  superAdmin?: boolean;
}

export interface NewKey {
  principalId: string;
  type: PrincipalType;
  name?: string;
  /** Organizations the key acts in; when empty the key acts in its principal's memberships. */
  orgs?: OrgMembership[];
  /** Entitlements the key grants (stored as the key's scopes). */
  entitlements?: string[];
  /** `90m`, `12h`, `30d`, `2w`; no expiry when absent. */
  expiresIn?: string;
}

export interface UserSummary {
  id: string;
  email: string | null;
  name: string | null;
  orgs: OrgMembership[];
  entitlements: string[];
  superAdmin: boolean;
  disabledAt: Date | null;
  createdAt: Date;
}

export interface KeySummary {
  id: string;
  prefix: string;
  principalId: string;
  principalType: PrincipalType;
  name: string | null;
  orgs: OrgMembership[];
  entitlements: string[];
  createdAt: Date;
  expiresAt: Date | null;
  revokedAt: Date | null;
}

export interface OrgSummary {
  id: string;
  name: string;
  members: number;
  createdAt: Date;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const UNIQUE_VIOLATION = "23505";

function isUniqueViolation(error: unknown, constraint: string): boolean {
  return sqlState(error) === UNIQUE_VIOLATION && constraintName(error) === constraint;
}

/** Accepts a key id, its prefix, or the printed form `smk_<prefix>` / `smk_<prefix>_…`. */
function keyPrefixOf(reference: string): string {
  const bare = reference.startsWith(API_KEY_MARK) ? reference.slice(API_KEY_MARK.length) : reference;
  return bare.split("_")[0];
}

export class IdentityDirectory {
  constructor(
    /** Also what the other operator operations (webhooks) run on. */
    readonly db: Db,
    private readonly changes: EventBus<AuthChange>,
  ) {}

  async createUser(input: NewUser): Promise<UserSummary> {
    const email = requireEmail(input.email);
    const password = requirePassword(input.password);
    const name = optionalName(input.name);
    const orgs = requireMemberships(input.orgs);
    const entitlements = requireEntitlements(input.entitlements);
    const superAdmin = input.superAdmin === true;
    // Hash before the transaction: argon2id takes tens of milliseconds and holds no lock.
    const passwordHash = await Bun.password.hash(password, { algorithm: "argon2id" });
    const id = randomUUID();
    const taken = () => fail.email_taken(`A user with email ${email} already exists`);
    try {
      await this.db.transaction(async (tx) => {
        const [existing] = await tx
          .select({ id: principals.id })
          .from(principals)
          .where(sql`lower(${principals.email}) = ${email.toLowerCase()}`);
        if (existing) throw taken();
        await tx.insert(principals).values({
          id,
          type: "user",
          email,
          name: name ?? null,
          password_hash: passwordHash,
          is_super_admin: superAdmin,
          entitlements,
        });
        await this.ensureOrgs(tx, orgs.map((o) => o.id));
        if (orgs.length > 0) {
          await tx.insert(memberships).values(orgs.map((o) => ({ principal_id: id, org_id: o.id, role: o.role })));
        }
      });
    } catch (error) {
      // Two creations of the same email at once: the index decides.
      if (isUniqueViolation(error, "principals_email_key")) throw taken();
      throw error;
    }
    log.info("user created", { principal: id, superAdmin });
    const [user] = await this.listUsers({ id });
    return user;
  }

  async listUsers(filter: { id?: string } = {}): Promise<UserSummary[]> {
    const users = await this.db
      .select()
      .from(principals)
      .where(filter.id ? and(eq(principals.type, "user"), eq(principals.id, filter.id)) : eq(principals.type, "user"))
      .orderBy(principals.created_at, principals.id);
    const orgsOf = await this.membershipsOf(users.map((u) => u.id));
    return users.map((u) => ({
      id: u.id,
      email: u.email,
      name: u.name,
      orgs: orgsOf.get(u.id) ?? [],
      entitlements: u.entitlements,
      superAdmin: u.is_super_admin,
      disabledAt: u.disabled_at,
      createdAt: u.created_at,
    }));
  }

  /** Disables any principal by id, or a user by email. Its sessions and keys stop working at once. */
  async disableUser(idOrEmail: string): Promise<{ id: string; disabledAt: Date }> {
    const id = await this.resolvePrincipal(idOrEmail);
    const [updated] = await this.db
      .update(principals)
      .set({ disabled_at: new Date() })
      .where(and(eq(principals.id, id), isNull(principals.disabled_at)))
      .returning({ disabledAt: principals.disabled_at });
    const disabledAt =
      updated?.disabledAt ??
      (await this.db.select({ at: principals.disabled_at }).from(principals).where(eq(principals.id, id)))[0].at!;
    this.changes.emit({ kind: "principal_changed", principalId: id });
    log.info("principal disabled", { principal: id });
    return { id, disabledAt };
  }

  async enableUser(idOrEmail: string): Promise<{ id: string }> {
    const id = await this.resolvePrincipal(idOrEmail);
    await this.db.update(principals).set({ disabled_at: null }).where(eq(principals.id, id));
    this.changes.emit({ kind: "principal_changed", principalId: id });
    log.info("principal enabled", { principal: id });
    return { id };
  }

  /**
   * Creates an API key and returns it: the only time the key exists outside the caller's hands, since only
   * its hash is stored. Agents and services are created (or renamed) along with their key; a user must
   * exist already.
   */
  async createKey(input: NewKey): Promise<KeySummary & { key: string }> {
    const principalId = requireId(input.principalId, "The principal id");
    const type = requirePrincipalType(input.type);
    const name = optionalName(input.name);
    const orgs = requireMemberships(input.orgs);
    const entitlements = requireEntitlements(input.entitlements);
    const expiresAt = input.expiresIn !== undefined ? new Date(Date.now() + parseDuration(input.expiresIn)) : null;

    for (let attempt = 1; ; attempt++) {
      const generated = newApiKey();
      try {
        const id = await this.db.transaction(async (tx) => {
          await this.ensureKeyHolder(tx, principalId, type, name);
          await this.ensureOrgs(tx, orgs.map((o) => o.id));
          const [row] = await tx
            .insert(apiKeys)
            .values({
              prefix: generated.prefix,
              key_hash: hashSecret(generated.key),
              principal_id: principalId,
              name: name ?? null,
              scopes: entitlements,
              orgs,
              expires_at: expiresAt,
            })
            .returning({ id: apiKeys.id });
          return row.id;
        });
        log.info("api key created", { keyId: id, prefix: generated.prefix, principal: principalId });
        const [summary] = await this.listKeys({ id });
        return { ...summary, key: generated.key };
      } catch (error) {
        // 12 random characters rarely collide; when they do, draw again.
        if (attempt < 3 && isUniqueViolation(error, "api_keys_prefix_key")) continue;
        throw error;
      }
    }
  }

  async listKeys(filter: { principalId?: string; id?: string } = {}): Promise<KeySummary[]> {
    const conditions = [];
    if (filter.principalId) conditions.push(eq(apiKeys.principal_id, filter.principalId));
    if (filter.id) conditions.push(eq(apiKeys.id, filter.id));
    const found = await this.db
      .select({
        id: apiKeys.id,
        prefix: apiKeys.prefix,
        principalId: apiKeys.principal_id,
        principalType: principals.type,
        name: apiKeys.name,
        orgs: apiKeys.orgs,
        entitlements: apiKeys.scopes,
        createdAt: apiKeys.created_at,
        expiresAt: apiKeys.expires_at,
        revokedAt: apiKeys.revoked_at,
      })
      .from(apiKeys)
      .innerJoin(principals, eq(principals.id, apiKeys.principal_id))
      .where(conditions.length > 0 ? and(...conditions) : undefined)
      .orderBy(apiKeys.created_at, apiKeys.id);
    return found;
  }

  /** Revokes by key id or prefix. Revoking a revoked key is not an error; it changes nothing. */
  async revokeKey(reference: string): Promise<KeySummary & { alreadyRevoked: boolean }> {
    const trimmed = typeof reference === "string" ? reference.trim() : "";
    if (!trimmed) throw notFound("API key");
    const match = UUID.test(trimmed) ? eq(apiKeys.id, trimmed) : eq(apiKeys.prefix, keyPrefixOf(trimmed));
    const [revoked] = await this.db
      .update(apiKeys)
      .set({ revoked_at: new Date() })
      .where(and(match, isNull(apiKeys.revoked_at)))
      .returning({ id: apiKeys.id });
    const [existing] = revoked ? [revoked] : await this.db.select({ id: apiKeys.id }).from(apiKeys).where(match);
    if (!existing) throw notFound("API key");
    this.changes.emit({ kind: "credential_revoked", credentialId: existing.id });
    if (revoked) log.info("api key revoked", { keyId: existing.id });
    const [summary] = await this.listKeys({ id: existing.id });
    return { ...summary, alreadyRevoked: !revoked };
  }

  async createOrg(idInput: string, nameInput?: string): Promise<OrgSummary> {
    const id = requireId(idInput, "The organization id");
    const name = optionalName(nameInput) ?? id;
    const [created] = await this.db.insert(organizations).values({ id, name }).onConflictDoNothing().returning();
    if (!created) throw fail.org_exists(`Organization ${id} already exists`);
    log.info("organization created", { org: id });
    return { id, name: created.name, members: 0, createdAt: created.created_at };
  }

  async listOrgs(): Promise<OrgSummary[]> {
    const found = await rows<{ id: string; name: string; members: number | string; created_at: Date | string }>(
      this.db,
      sql`select o.id, o.name, o.created_at, (select count(*) from memberships m where m.org_id = o.id) as members
          from organizations o order by o.created_at, o.id`,
    );
    return found.map((o) => ({ id: o.id, name: o.name, members: Number(o.members), createdAt: new Date(o.created_at) }));
  }

  /**
   * The first administrator of a fresh installation, from SYMBIA_ADMIN_EMAIL and SYMBIA_ADMIN_PASSWORD.
   * Runs at every start and does nothing once any user exists, so changing the variables later has no
   * effect (use the CLI instead).
   */
  async ensureBootstrapAdmin(config: Pick<Config, "adminEmail" | "adminPassword">): Promise<string | undefined> {
    if (!config.adminEmail || !config.adminPassword) return undefined;
    const [anyUser] = await this.db.select({ id: principals.id }).from(principals).where(eq(principals.type, "user")).limit(1);
    if (anyUser) return undefined;
    try {
      const admin = await this.createUser({
        email: config.adminEmail,
        password: config.adminPassword,
        name: "Administrator",
        superAdmin: true,
      });
      log.info("first administrator created", { principal: admin.id });
      return admin.id;
    } catch (error) {
      // Another instance starting at the same time created it first.
      if (error instanceof AppError && error.code === "email_taken") return undefined;
      throw error;
    }
  }

  // ------------------------------------------------------------------ helpers

  private async resolvePrincipal(idOrEmail: string): Promise<string> {
    const reference = typeof idOrEmail === "string" ? idOrEmail.trim() : "";
    if (reference) {
      const [byId] = await this.db.select({ id: principals.id }).from(principals).where(eq(principals.id, reference));
      if (byId) return byId.id;
      const [byEmail] = await this.db
        .select({ id: principals.id })
        .from(principals)
        .where(sql`lower(${principals.email}) = ${reference.toLowerCase()}`);
      if (byEmail) return byEmail.id;
    }
    throw notFound(`User ${reference || "(empty)"}`);
  }

  /** Agents and services come into existence with their first key; users must be created first. */
  private async ensureKeyHolder(tx: Executor, id: string, type: PrincipalType, name: string | undefined): Promise<void> {
    const [existing] = await tx.select({ type: principals.type }).from(principals).where(eq(principals.id, id));
    if (existing && existing.type !== type) {
      throw fail.principal_type_mismatch(`Principal ${id} is a ${existing.type}, not a ${type}`);
    }
    if (!existing && type === "user") throw notFound(`User ${id}`);
    if (!existing) {
      await tx.insert(principals).values({ id, type, name: name ?? id });
    } else if (name && type !== "user") {
      await tx.update(principals).set({ name }).where(eq(principals.id, id));
    }
  }

  private async ensureOrgs(tx: Executor, ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    await tx.insert(organizations).values(ids.map((id) => ({ id, name: id }))).onConflictDoNothing();
  }

  private async membershipsOf(principalIds: string[]): Promise<Map<string, OrgMembership[]>> {
    const byPrincipal = new Map<string, OrgMembership[]>();
    if (principalIds.length === 0) return byPrincipal;
    const found = await this.db
      .select()
      .from(memberships)
      .where(inArray(memberships.principal_id, principalIds))
      .orderBy(memberships.org_id);
    for (const m of found) {
      const list = byPrincipal.get(m.principal_id) ?? [];
      list.push({ id: m.org_id, role: m.role });
      byPrincipal.set(m.principal_id, list);
    }
    return byPrincipal;
  }
}
