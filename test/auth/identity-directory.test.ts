/**
 * The operator operations themselves (the CLI and the admin socket only carry their arguments): input
 * checks, what they store, and the AuthChange each one announces.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { eq } from "drizzle-orm";
import type { AuthChange } from "../../src/auth/identity";
import { parseDuration, parseOrgReference } from "../../src/auth/identity-input";
import { runOperatorOperation } from "../../src/operator/operations";
import { principals } from "../../src/db/schema";
import { AppError } from "../../src/core/errors";
import { startTestServer, uniq, type TestServer } from "../support/server";
import { useEndToEndTimeout } from "../support/timeout";

useEndToEndTimeout();

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
});
afterAll(() => t.stop());

const email = () => `${uniq("op")}@example.test`;

async function rejection(promise: Promise<unknown>): Promise<AppError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(AppError);
    return error as AppError;
  }
  throw new Error("expected the operation to fail");
}

function recordChanges(): AuthChange[] {
  const seen: AuthChange[] = [];
  t.server.services.authChanges.on("test recorder", (change) => void seen.push(change), { inline: true });
  return seen;
}

describe("users", () => {
  test("create: random UUID id, argon2id hash, memberships with orgs created on the way", async () => {
    const org = uniq("org");
    const user = await t.admin.createUser({
      email: email(),
      password: "s3cret",
      name: "Grace",
      orgs: [{ id: org, role: "admin" }, { id: uniq("org"), role: "member" }],
      entitlements: ["messaging:admin", "messaging:admin"],
    });
    expect(user.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(user).toMatchObject({ name: "Grace", entitlements: ["messaging:admin"], superAdmin: false, disabledAt: null });
    expect(user.orgs).toContainEqual({ id: org, role: "admin" });
    expect((await t.admin.listOrgs()).find((o) => o.id === org)?.members).toBe(1);
    const [row] = await t.server.services.database.db.select().from(principals).where(eq(principals.id, user.id));
    expect(row.password_hash).toStartWith("$argon2id$");
    const login = await t.request("POST", "/api/auth/login", { body: { email: user.email, password: "s3cret" } });
    expect(login.status).toBe(200);
    expect(login.body.user.orgs).toContainEqual({ id: org, role: "admin" });
  });

  test("create: an email already used, in any case, is a 409 email_taken", async () => {
    const address = email();
    await t.admin.createUser({ email: address, password: "x" });
    const error = await rejection(t.admin.createUser({ email: address.toUpperCase(), password: "y" }));
    expect(error.status).toBe(409);
    expect(error.code).toBe("email_taken");
    expect(error.message).toContain("already exists");
  });

  test("create: bad input is a 400 with a readable message", async () => {
    for (const input of [
      { email: "not-an-email", password: "x" },
      { email: email(), password: "" },
      { email: email(), password: "x", orgs: [{ id: "acme", role: "owner" as never }] },
      { email: email(), password: "x", orgs: [{ id: "has space", role: "member" as const }] },
      { email: email(), password: "x", entitlements: [""] },
    ]) {
      const error = await rejection(t.admin.createUser(input));
      expect(error.status).toBe(400);
    }
  });

  test("super admin flag", async () => {
    const admin = await t.admin.createUser({ email: email(), password: "x", superAdmin: true });
    expect(admin.superAdmin).toBe(true);
  });

  test("disable by email or id announces principal_changed; unknown is 404", async () => {
    const seen = recordChanges();
    const user = await t.admin.createUser({ email: email(), password: "x" });
    const result = await t.admin.disableUser(user.email!.toUpperCase());
    expect(result.id).toBe(user.id);
    expect(seen).toContainEqual({ kind: "principal_changed", principalId: user.id });
    expect((await t.admin.listUsers({ id: user.id }))[0].disabledAt).not.toBeNull();
    // Disabling twice keeps the first time.
    expect((await t.admin.disableUser(user.id)).disabledAt).toEqual(result.disabledAt);
    expect((await rejection(t.admin.disableUser("nobody@example.test"))).status).toBe(404);
    await t.admin.enableUser(user.id);
    expect((await t.admin.listUsers({ id: user.id }))[0].disabledAt).toBeNull();
  });
});

describe("API keys", () => {
  test("create for an agent: the agent is created, the key works with its entitlements and orgs", async () => {
    const agentId = `assistant:${uniq()}`;
    const org = uniq("org");
    const key = await t.admin.createKey({
      principalId: agentId,
      type: "agent",
      name: "Support bot",
      orgs: [{ id: org, role: "member" }],
      entitlements: ["cap:messaging.interrupt"],
    });
    expect(key.key).toStartWith(`smk_${key.prefix}_`);
    expect(key).toMatchObject({ principalId: agentId, principalType: "agent", name: "Support bot", expiresAt: null, revokedAt: null });
    const me = await t.request("GET", "/api/auth/me", { headers: { "x-api-key": key.key } });
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ id: agentId, type: "agent", name: "Support bot", entitlements: ["cap:messaging.interrupt"], orgs: [{ id: org, role: "member" }] });
    // A second key for the same agent reuses it.
    const second = await t.admin.createKey({ principalId: agentId, type: "agent" });
    expect((await t.admin.listKeys({ principalId: agentId })).map((k) => k.id).sort()).toEqual([key.id, second.id].sort());
  });

  test("create for a user needs the user; a type that contradicts the principal is 409", async () => {
    expect((await rejection(t.admin.createKey({ principalId: "no-such-user", type: "user" }))).status).toBe(404);
    const user = await t.admin.createUser({ email: email(), password: "x" });
    const key = await t.admin.createKey({ principalId: user.id, type: "user", entitlements: ["cap:messaging.route"] });
    const me = await t.request("GET", "/api/auth/me", { headers: { authorization: `Bearer ${key.key}` } });
    expect(me.body).toMatchObject({ id: user.id, type: "user", entitlements: ["cap:messaging.route"] });
    const mismatch = await rejection(t.admin.createKey({ principalId: user.id, type: "agent" }));
    expect(mismatch.status).toBe(409);
    expect(mismatch.code).toBe("principal_type_mismatch");
  });

  test("expiresIn sets the expiry; a bad duration is 400", async () => {
    const before = Date.now();
    const key = await t.admin.createKey({ principalId: `service:${uniq()}`, type: "service", expiresIn: "90m" });
    const expiresAt = new Date(key.expiresAt!).getTime();
    expect(expiresAt).toBeGreaterThanOrEqual(before + 90 * 60_000);
    expect(expiresAt).toBeLessThan(Date.now() + 90 * 60_000 + 1000);
    for (const bad of ["30", "0d", "3x", "-1h", ""]) {
      expect((await rejection(t.admin.createKey({ principalId: `service:${uniq()}`, type: "service", expiresIn: bad }))).status).toBe(400);
    }
  });

  test("revoke by prefix, printed prefix or id announces credential_revoked with the key id", async () => {
    const seen = recordChanges();
    const references = [
      (k: { id: string; prefix: string }) => k.prefix,
      (k: { id: string; prefix: string }) => `smk_${k.prefix}`,
      (k: { id: string; prefix: string }) => k.id,
    ];
    for (const reference of references) {
      const key = await t.admin.createKey({ principalId: `agent:${uniq()}`, type: "agent" });
      const revoked = await t.admin.revokeKey(reference(key));
      expect(revoked).toMatchObject({ id: key.id, alreadyRevoked: false });
      expect(revoked.revokedAt).not.toBeNull();
      expect(seen).toContainEqual({ kind: "credential_revoked", credentialId: key.id });
      expect((await t.admin.revokeKey(key.id)).alreadyRevoked).toBe(true);
    }
    expect((await rejection(t.admin.revokeKey("zzzzzzzzzzzz"))).status).toBe(404);
  });
});

describe("organizations", () => {
  test("create, conflict on an existing id, list with member counts", async () => {
    const id = uniq("org");
    const org = await t.admin.createOrg(id, "Acme Inc");
    expect(org).toMatchObject({ id, name: "Acme Inc", members: 0 });
    expect((await rejection(t.admin.createOrg(id))).code).toBe("org_exists");
    await t.admin.createUser({ email: email(), password: "x", orgs: [{ id, role: "member" }] });
    expect((await t.admin.listOrgs()).find((o) => o.id === id)).toMatchObject({ name: "Acme Inc", members: 1 });
  });
});

describe("operation dispatch", () => {
  test("answers JSON values and rejects unknown operations", async () => {
    const org = (await runOperatorOperation(t.admin, "createOrg", { id: uniq("org") })) as { createdAt: unknown };
    expect(typeof org.createdAt).toBe("string");
    expect((await rejection(runOperatorOperation(t.admin, "dropDatabase", {}))).code).toBe("unknown_operation");
  });
});

describe("input parsing", () => {
  test("org references and durations", () => {
    expect(parseOrgReference("acme")).toEqual({ id: "acme", role: "member" });
    expect(parseOrgReference("acme:admin")).toEqual({ id: "acme", role: "admin" });
    expect(parseOrgReference("team:blue:member")).toEqual({ id: "team:blue", role: "member" });
    expect(parseOrgReference("team:blue")).toEqual({ id: "team:blue", role: "member" });
    expect(parseDuration("30d")).toBe(30 * 86_400_000);
    expect(parseDuration("12h")).toBe(12 * 3_600_000);
    expect(parseDuration("90m")).toBe(90 * 60_000);
    expect(parseDuration("2w")).toBe(14 * 86_400_000);
  });
});
