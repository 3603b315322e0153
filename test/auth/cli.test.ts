/**
 * The operator CLI as operators use it: separate processes next to a running server process. On the
 * embedded database only one process may open the data, so these commands must go through the server's
 * admin socket, and what they change must take effect in that server at once.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { usingPostgres } from "../support/database";
import { tempDir } from "../support/harness";
import { runCli, startServerProcess, type ServerProcess } from "../support/process";
import { uniq } from "../support/server";
import { useEndToEndTimeout } from "../support/timeout";

useEndToEndTimeout();

let server: ServerProcess;
beforeAll(async () => {
  server = await startServerProcess();
});
afterAll(async () => {
  if (!server) return;
  const socket = server.socketPath;
  expect(await server.stop()).toBe(0);
  expect(existsSync(socket)).toBe(false);
});

const cli = (args: string[], stdin?: string) => runCli(args, { env: server.env, stdin });

async function me(headers: Record<string, string>) {
  const res = await fetch(`${server.url}/api/auth/me`, { headers });
  return { status: res.status, body: (await res.json()) as any };
}

async function login(email: string, password: string) {
  const res = await fetch(`${server.url}/api/auth/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email, password }),
  });
  return { status: res.status, body: (await res.json()) as any };
}

/** Exactly one line on stdout, and that line alone. */
function onlyLine(stdout: string): string {
  const lines = stdout.split("\n").filter((l) => l !== "");
  expect(lines).toHaveLength(1);
  return lines[0];
}

describe("while the server runs", () => {
  test("the admin socket is private to the server's account", () => {
    expect(statSync(server.socketPath).isSocket()).toBe(true);
    expect(statSync(server.socketPath).mode & 0o777).toBe(0o600);
  });

  test("users create prints the new id alone; the user can log in with the password from stdin", async () => {
    const email = `${uniq("ops")}@example.test`;
    const org = uniq("org");
    const created = await cli(
      ["users", "create", "--email", email, "--password-stdin", "--name", "Ops", "--org", `${org}:admin`, "--entitlement", "messaging:admin"],
      "pass word 1\n",
    );
    expect(created.stderr).toBe("");
    expect(created.code).toBe(0);
    const id = onlyLine(created.stdout);
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);

    const session = await login(email, "pass word 1");
    expect(session.status).toBe(200);
    expect(session.body.user).toMatchObject({ id, name: "Ops", orgs: [{ id: org, role: "admin" }], entitlements: ["messaging:admin"] });

    const listed = await cli(["users", "list", "--json"]);
    expect(listed.code).toBe(0);
    expect(JSON.parse(listed.stdout)).toContainEqual(expect.objectContaining({ id, email }));
    const table = await cli(["users", "list"]);
    expect(table.stdout).toContain(id);
    expect(table.stdout.split("\n")[0]).toContain("EMAIL");

    const duplicate = await cli(["users", "create", "--email", email.toUpperCase(), "--password-stdin"], "other\n");
    expect(duplicate.code).toBe(1);
    expect(duplicate.stderr.trim().split("\n")).toHaveLength(1);
    expect(duplicate.stderr).toContain("already exists");
  });

  test("keys create prints the key once; keys revoke makes the server reject it at once", async () => {
    const agent = `assistant:${uniq()}`;
    const created = await cli([
      "keys", "create", "--principal", agent, "--type", "agent", "--name", "Helper",
      "--entitlement", "cap:messaging.interrupt", "--org", uniq("org"), "--expires-in", "30d",
    ]);
    expect(created.code).toBe(0);
    const key = onlyLine(created.stdout);
    expect(key).toMatch(/^smk_[a-z0-9]{12}_[A-Za-z0-9_-]{43}$/);
    expect(created.stderr).not.toContain(key);

    const before = await me({ "x-api-key": key });
    expect(before.status).toBe(200);
    expect(before.body).toMatchObject({ id: agent, type: "agent", name: "Helper", entitlements: ["cap:messaging.interrupt"] });

    const prefix = key.slice(4, 16);
    const listed = await cli(["keys", "list", "--principal", agent]);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toContain(`smk_${prefix}`);
    expect(listed.stdout).not.toContain(key);

    const revoked = await cli(["keys", "revoke", prefix]);
    expect(revoked.code).toBe(0);
    expect(revoked.stdout).toContain("revoked");
    const after = await me({ "x-api-key": key });
    expect(after.status).toBe(401);
    expect(after.body.code).toBe("credential_revoked");

    const json = JSON.parse((await cli(["keys", "list", "--principal", agent, "--json"])).stdout);
    expect(json).toHaveLength(1);
    expect(json[0].revokedAt).not.toBeNull();
    expect(JSON.stringify(json)).not.toContain("hash");
  });

  test("keys create --type user needs an existing user", async () => {
    const missing = await cli(["keys", "create", "--principal", "no-such-user", "--type", "user"]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("not found");
  });

  test("users disable stops the user's live session at once", async () => {
    const email = `${uniq("gone")}@example.test`;
    expect((await cli(["users", "create", "--email", email, "--password-stdin"], "pw")).code).toBe(0);
    const { body } = await login(email, "pw");
    const headers = { authorization: `Bearer ${body.token}` };
    expect((await me(headers)).status).toBe(200);
    const disabled = await cli(["users", "disable", email]);
    expect(disabled.code).toBe(0);
    const after = await me(headers);
    expect(after.status).toBe(401);
    expect(after.body.code).toBe("principal_disabled");
  });

  test("orgs create and list", async () => {
    const id = uniq("org");
    const created = await cli(["orgs", "create", id, "--name", "Acme Corp"]);
    expect(created.code).toBe(0);
    expect(onlyLine(created.stdout)).toBe(id);
    const again = await cli(["orgs", "create", id]);
    expect(again.code).toBe(1);
    const listed = await cli(["orgs", "list"]);
    expect(listed.stdout).toMatch(new RegExp(`${id}\\s+Acme Corp`));
  });

  test("without the socket the CLI goes to the database directly", async () => {
    const nowhere = join(tempDir("symbia-none-"), "missing.sock");
    if (!usingPostgres) {
      // The embedded database is held by the server: a clear refusal, not a second opener.
      const refused = await cli(["orgs", "list", "--socket", nowhere]);
      expect(refused.code).toBe(1);
      expect(refused.stderr.trim().split("\n")).toHaveLength(1);
      expect(refused.stderr).toContain("in use");
      return;
    }
    // On PostgreSQL it writes itself and tells the server with NOTIFY.
    const agent = `service:${uniq()}`;
    const key = onlyLine((await cli(["keys", "create", "--principal", agent, "--type", "service", "--socket", nowhere])).stdout);
    expect((await me({ authorization: `Bearer ${key}` })).status).toBe(200);
    const revoked = await cli(["keys", "revoke", key.slice(4, 16), "--socket", nowhere]);
    expect(revoked.code).toBe(0);
    let status = 200;
    for (const deadline = Date.now() + 5000; status === 200 && Date.now() < deadline; await Bun.sleep(50)) {
      status = (await me({ authorization: `Bearer ${key}` })).status;
    }
    expect(status).toBe(401);
  });
});

describe("command line errors and help", () => {
  test.each([
    ["users create --email", "--email needs a value"],
    ["users create --email a@b.c --bogus", "unknown flag --bogus"],
    ["users create --email a@b.c", "--password-stdin is required"],
    ["users create --password-stdin", "--email is required"],
    ["keys create --principal x", "--type is required"],
    ["keys create --principal x --type robot", "agent, service or user"],
    ["keys create --principal x --type agent --expires-in soon", "not a duration"],
    ["keys revoke", "missing <id|prefix>"],
    ["keys revoke a b", "unexpected argument"],
    ["users frobnicate", 'unknown command "users frobnicate"'],
    ["orgs", "needs a subcommand"],
  ])("%s: one line on stderr, exit 1", async (command, message) => {
    const result = await cli(command.split(" "), "pw\n");
    expect(result.code).toBe(1);
    expect(result.stdout).toBe("");
    const lines = result.stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(message);
  });

  test.each(["users create", "keys create", "keys revoke", "orgs list", "users", "keys", "orgs"])("%s --help", async (command) => {
    const result = await cli([...command.split(" "), "--help"]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("Usage:");
  });

  test("users create --help lists every flag", async () => {
    const { stdout } = await cli(["users", "create", "--help"]);
    for (const flag of ["--email", "--password-stdin", "--name", "--org", "--entitlement", "--super-admin", "--socket"]) {
      expect(stdout).toContain(flag);
    }
  });
});

describe.skipIf(usingPostgres)("with no server running", () => {
  test("commands open the embedded database themselves", async () => {
    const dataDir = tempDir("symbia-offline-");
    const env = { ...server.env, DATA_DIR: dataDir };
    try {
      const email = `${uniq("first")}@example.test`;
      const created = await runCli(["users", "create", "--email", email, "--password-stdin", "--super-admin"], { env, stdin: "pw\n" });
      expect(created.stderr).toBe("");
      expect(created.code).toBe(0);
      const listed = await runCli(["users", "list", "--json"], { env });
      expect(JSON.parse(listed.stdout)).toEqual([expect.objectContaining({ email, superAdmin: true })]);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
