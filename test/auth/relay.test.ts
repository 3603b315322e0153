/**
 * Several instances on one PostgreSQL: a revocation, logout or disable made on one instance empties the
 * credential caches of the others through NOTIFY on `symbia_auth`. (The embedded database has a single
 * process, so there is nothing to relay.)
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { usingPostgres } from "../support/database";
import { startTestServer, type TestPrincipal, type TestServer } from "../support/server";
import { useEndToEndTimeout } from "../support/timeout";

useEndToEndTimeout();

let a: TestServer;
let b: TestServer;

describe.skipIf(!usingPostgres)("auth changes across instances", () => {
  beforeAll(async () => {
    a = await startTestServer();
    b = await startTestServer();
  });
  afterAll(async () => {
    await a?.stop();
    await b?.stop();
  });

  /** Polls `server` until the principal's credential is refused, for at most two seconds. */
  async function refusedOn(server: TestServer, principal: TestPrincipal): Promise<{ status: number; body: any }> {
    let res = await server.request("GET", "/api/auth/me", { as: principal });
    for (const deadline = Date.now() + 2000; res.status === 200 && Date.now() < deadline; ) {
      await Bun.sleep(20);
      res = await server.request("GET", "/api/auth/me", { as: principal });
    }
    return res;
  }

  test("a key revoked on one instance is refused by the other, which had it cached", async () => {
    const agent = await a.principal({ type: "agent" });
    expect((await b.request("GET", "/api/auth/me", { as: agent })).status).toBe(200);
    await a.admin.revokeKey(agent.token.slice(4, 16));
    const res = await refusedOn(b, agent);
    expect(res.status).toBe(401);
    expect(res.body.code).toBe("credential_revoked");
  });

  test("logout on one instance ends the session on the other", async () => {
    const user = await a.principal();
    expect((await b.request("GET", "/api/auth/me", { as: user })).status).toBe(200);
    expect((await a.request("POST", "/api/auth/logout", { as: user })).status).toBe(200);
    expect((await refusedOn(b, user)).status).toBe(401);
  });

  test("a principal disabled on one instance is refused by the other", async () => {
    const user = await a.principal();
    expect((await b.request("GET", "/api/auth/me", { as: user })).status).toBe(200);
    await a.admin.disableUser(user.id);
    const res = await refusedOn(b, user);
    expect(res.status).toBe(401);
    expect(res.body.code).toBe("principal_disabled");
  });
});
