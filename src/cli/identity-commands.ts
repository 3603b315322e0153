/**
 * The operator commands: `users`, `keys` and `orgs`. Each subcommand declares its flags (which also make
 * its --help), turns them into the arguments of one identity operation and prints the result. Values
 * meant for scripts (a new user's id, a new key) are printed alone on stdout; notes go to stderr.
 */
import type { KeySummary, OrgSummary, UserSummary } from "../auth/identity-directory";
import type { OperatorOperation } from "../operator/operations";
import { parseOrgReference } from "../auth/identity-input";
import { loadConfig } from "../config";
import { setLogLevel } from "../log";
import { SERVICE_NAME } from "../version";
import { flagHelp, parseArgs, type FlagSpec, type ParsedArgs } from "./args";
import { runOperation } from "./operator-connection";
import { dash, formatTable } from "./table";
import { UsageError } from "./usage-error";

type Json<T> = { [K in keyof T]: T[K] extends Date ? string : T[K] extends Date | null ? string | null : T[K] };

interface Io {
  out(line: string): void;
  note(line: string): void;
  readStdin(): Promise<string>;
}

interface Subcommand {
  usage: string;
  summary: string;
  flags: Record<string, FlagSpec>;
  /** Names of the positional arguments, all required. */
  positionals?: string[];
  run(args: ParsedArgs, call: (operation: OperatorOperation, args: unknown) => Promise<any>, io: Io): Promise<void>;
}

const COMMON_FLAGS: Record<string, FlagSpec> = {
  socket: { kind: "string", value: "PATH", help: "admin socket of the running server (default: ADMIN_SOCKET, $DATA_DIR/admin.sock)" },
};
const JSON_FLAG: Record<string, FlagSpec> = { json: { kind: "switch", help: "print JSON instead of a table" } };
const ORG_FLAG: FlagSpec = { kind: "list", value: "ORG[:admin]", help: "organization membership (created if missing); repeatable" };
const ENTITLEMENT_FLAG: FlagSpec = { kind: "list", value: "CAP", help: "entitlement, e.g. cap:messaging.interrupt; repeatable" };

const orgList = (orgs: { id: string; role: string }[]) => (orgs.length ? orgs.map((o) => `${o.id}:${o.role}`).join(",") : "-");
const list = (values: string[]) => (values.length ? values.join(",") : "-");

function passwordFromStdin(raw: string): string {
  // `echo secret | ...` and here-strings add one line ending; it is not part of the password.
  const password = raw.replace(/\r?\n$/, "");
  if (!password) throw new UsageError("users create: no password on standard input");
  return password;
}

const USERS: Record<string, Subcommand> = {
  create: {
    usage: "users create --email EMAIL --password-stdin [--name NAME] [--org ORG[:admin]]... [--entitlement CAP]... [--super-admin]",
    summary: "create a user (the password is read from standard input); prints the new user id",
    flags: {
      email: { kind: "string", value: "EMAIL", help: "login email, unique regardless of case" },
      "password-stdin": { kind: "switch", help: "read the password from standard input (required)" },
      name: { kind: "string", value: "NAME", help: "display name" },
      org: ORG_FLAG,
      entitlement: ENTITLEMENT_FLAG,
      "super-admin": { kind: "switch", help: "grant every permission" },
    },
    async run(args, call, io) {
      if (!args.strings.email) throw new UsageError("users create: --email is required");
      if (!args.switches.has("password-stdin")) {
        throw new UsageError("users create: --password-stdin is required (passwords are not taken on the command line)");
      }
      const password = passwordFromStdin(await io.readStdin());
      const user: Json<UserSummary> = await call("createUser", {
        email: args.strings.email,
        password,
        name: args.strings.name,
        orgs: (args.lists.org ?? []).map(parseOrgReference),
        entitlements: args.lists.entitlement ?? [],
        superAdmin: args.switches.has("super-admin"),
      });
      io.out(user.id);
    },
  },
  list: {
    usage: "users list [--json]",
    summary: "list users",
    flags: JSON_FLAG,
    async run(args, call, io) {
      const users: Json<UserSummary>[] = await call("listUsers", {});
      if (args.switches.has("json")) return io.out(JSON.stringify(users, null, 2));
      io.out(
        formatTable(
          ["ID", "EMAIL", "NAME", "ORGS", "ENTITLEMENTS", "SUPER_ADMIN", "DISABLED", "CREATED"],
          users.map((u) => [u.id, dash(u.email), dash(u.name), orgList(u.orgs), list(u.entitlements), u.superAdmin ? "yes" : "no", dash(u.disabledAt), u.createdAt]),
        ),
      );
    },
  },
  disable: {
    usage: "users disable <id|email>",
    summary: "disable a user (or an agent or service, by id); its sessions and keys stop working at once",
    flags: {},
    positionals: ["id|email"],
    async run(args, call, io) {
      const result: { id: string } = await call("disableUser", { user: args.positionals[0] });
      io.out(`${result.id} disabled`);
    },
  },
  enable: {
    usage: "users enable <id|email>",
    summary: "enable a disabled user again",
    flags: {},
    positionals: ["id|email"],
    async run(args, call, io) {
      const result: { id: string } = await call("enableUser", { user: args.positionals[0] });
      io.out(`${result.id} enabled`);
    },
  },
};

const KEYS: Record<string, Subcommand> = {
  create: {
    usage: "keys create --principal ID --type agent|service|user [--name NAME] [--org ORG[:admin]]... [--entitlement CAP]... [--expires-in 30d]",
    summary: "create an API key; prints the key, which is shown this once only",
    flags: {
      principal: { kind: "string", value: "ID", help: "who the key acts as; agents and services are created if missing" },
      type: { kind: "string", value: "agent|service|user", help: "type of that principal (a user must exist already)" },
      name: { kind: "string", value: "NAME", help: "name of the key (and of a new agent or service)" },
      org: { ...ORG_FLAG, help: "organization the key acts in (created if missing); repeatable" },
      entitlement: { ...ENTITLEMENT_FLAG, help: "entitlement the key grants, e.g. cap:messaging.interrupt; repeatable" },
      "expires-in": { kind: "string", value: "DURATION", help: "lifetime such as 90m, 12h, 30d or 2w (default: no expiry)" },
    },
    async run(args, call, io) {
      if (!args.strings.principal) throw new UsageError("keys create: --principal is required");
      if (!args.strings.type) throw new UsageError("keys create: --type is required (agent, service or user)");
      const key: Json<KeySummary> & { key: string } = await call("createKey", {
        principalId: args.strings.principal,
        type: args.strings.type,
        name: args.strings.name,
        orgs: (args.lists.org ?? []).map(parseOrgReference),
        entitlements: args.lists.entitlement ?? [],
        expiresIn: args.strings["expires-in"],
      });
      io.out(key.key);
      io.note(`key ${key.id} (smk_${key.prefix}) for ${key.principalType} ${key.principalId}; store it now, it is not shown again`);
    },
  },
  list: {
    usage: "keys list [--principal ID] [--json]",
    summary: "list API keys (never the keys themselves)",
    flags: { principal: { kind: "string", value: "ID", help: "only the keys of this principal" }, ...JSON_FLAG },
    async run(args, call, io) {
      const keys: Json<KeySummary>[] = await call("listKeys", { principalId: args.strings.principal });
      if (args.switches.has("json")) return io.out(JSON.stringify(keys, null, 2));
      io.out(
        formatTable(
          ["ID", "PREFIX", "PRINCIPAL", "TYPE", "NAME", "ORGS", "ENTITLEMENTS", "EXPIRES", "REVOKED", "CREATED"],
          keys.map((k) => [k.id, `smk_${k.prefix}`, k.principalId, k.principalType, dash(k.name), orgList(k.orgs), list(k.entitlements), dash(k.expiresAt), dash(k.revokedAt), k.createdAt]),
        ),
      );
    },
  },
  revoke: {
    usage: "keys revoke <id|prefix>",
    summary: "revoke an API key by its id or prefix; it stops working at once",
    flags: {},
    positionals: ["id|prefix"],
    async run(args, call, io) {
      const key: Json<KeySummary> & { alreadyRevoked: boolean } = await call("revokeKey", { key: args.positionals[0] });
      io.out(key.alreadyRevoked ? `${key.id} was already revoked` : `${key.id} revoked`);
    },
  },
};

const ORGS: Record<string, Subcommand> = {
  create: {
    usage: "orgs create <id> [--name NAME]",
    summary: "create an organization; prints its id",
    flags: { name: { kind: "string", value: "NAME", help: "display name (default: the id)" } },
    positionals: ["id"],
    async run(args, call, io) {
      const org: Json<OrgSummary> = await call("createOrg", { id: args.positionals[0], name: args.strings.name });
      io.out(org.id);
    },
  },
  list: {
    usage: "orgs list [--json]",
    summary: "list organizations",
    flags: JSON_FLAG,
    async run(args, call, io) {
      const orgs: Json<OrgSummary>[] = await call("listOrgs", {});
      if (args.switches.has("json")) return io.out(JSON.stringify(orgs, null, 2));
      io.out(formatTable(["ID", "NAME", "MEMBERS", "CREATED"], orgs.map((o) => [o.id, o.name, String(o.members), o.createdAt])));
    },
  },
};

interface WebhookSummary {
  id: string;
  url: string;
  scope: string;
  principal_id: string | null;
  org_id: string | null;
  events: string[] | null;
  enabled: boolean;
  disabled_reason: string | null;
  created_at: string;
}

const WEBHOOKS: Record<string, Subcommand> = {
  create: {
    usage: "webhooks create --url URL (--principal ID | --org ORG | --installation) [--event TYPE]... [--description TEXT]",
    summary: "register a webhook endpoint; prints its secret (whsec_…), which is shown this once only",
    flags: {
      url: { kind: "string", value: "URL", help: "where events are POSTed (http or https, public addresses only)" },
      principal: { kind: "string", value: "ID", help: "the events of the conversations this principal participates in" },
      org: { kind: "string", value: "ORG", help: "the events of this organization's conversations" },
      installation: { kind: "switch", help: "the events of every conversation" },
      event: { kind: "list", value: "TYPE", help: "an event type to receive, e.g. message.created or stream.*; repeatable (default: all)" },
      description: { kind: "string", value: "TEXT", help: "what the endpoint is for" },
    },
    async run(args, call, io) {
      if (!args.strings.url) throw new UsageError("webhooks create: --url is required");
      const created: WebhookSummary & { secret: string } = await call("createWebhook", {
        url: args.strings.url,
        principalId: args.strings.principal,
        orgId: args.strings.org,
        installation: args.switches.has("installation"),
        events: args.lists.event ?? [],
        description: args.strings.description,
      });
      io.out(created.secret);
      io.note(`webhook ${created.id} (${created.scope}) → ${created.url}; store the secret now, it is not shown again`);
    },
  },
  list: {
    usage: "webhooks list [--json]",
    summary: "list webhook endpoints (never their secrets)",
    flags: JSON_FLAG,
    async run(args, call, io) {
      const hooks: WebhookSummary[] = await call("listWebhooks", {});
      if (args.switches.has("json")) return io.out(JSON.stringify(hooks, null, 2));
      io.out(
        formatTable(
          ["ID", "URL", "SCOPE", "FOR", "EVENTS", "ENABLED", "DISABLED_REASON", "CREATED"],
          hooks.map((h) => [h.id, h.url, h.scope, dash(h.principal_id ?? h.org_id), h.events ? list(h.events) : "all", h.enabled ? "yes" : "no", dash(h.disabled_reason), h.created_at]),
        ),
      );
    },
  },
  disable: {
    usage: "webhooks disable <id>",
    summary: "disable a webhook endpoint; it receives nothing until enabled again (PATCH /api/webhooks/{id})",
    flags: {},
    positionals: ["id"],
    async run(args, call, io) {
      const hook: WebhookSummary = await call("disableWebhook", { id: args.positionals[0] });
      io.out(`${hook.id} disabled`);
    },
  },
  delete: {
    usage: "webhooks delete <id>",
    summary: "delete a webhook endpoint and its deliveries",
    flags: {},
    positionals: ["id"],
    async run(args, call, io) {
      const result: { id: string } = await call("deleteWebhook", { id: args.positionals[0] });
      io.out(`${result.id} deleted`);
    },
  },
};

const GROUPS: Record<string, { summary: string; subcommands: Record<string, Subcommand> }> = {
  users: { summary: "manage users", subcommands: USERS },
  keys: { summary: "manage API keys of agents, services and users", subcommands: KEYS },
  orgs: { summary: "manage organizations", subcommands: ORGS },
  webhooks: { summary: "manage webhook endpoints", subcommands: WEBHOOKS },
};

export const OPERATOR_COMMANDS = Object.keys(GROUPS);

export function operatorHelpLines(): string[] {
  return Object.entries(GROUPS).map(([name, group]) => `  ${name.padEnd(11)}  ${group.summary} (${Object.keys(group.subcommands).join(", ")})`);
}

const WHERE_IT_RUNS = `The command goes through the running server's admin socket when one answers, and otherwise opens the
database itself (DATABASE_URL, or the embedded database in DATA_DIR).`;

function groupHelp(name: string): string {
  const group = GROUPS[name];
  const lines = Object.values(group.subcommands).map((s) => `  ${SERVICE_NAME} ${s.usage}\n      ${s.summary}`);
  return `Usage:\n${lines.join("\n")}\n\n${WHERE_IT_RUNS}\n`;
}

function subcommandHelp(subcommand: Subcommand): string {
  const flags = flagHelp({ ...subcommand.flags, ...COMMON_FLAGS, help: { kind: "switch", help: "show this help" } });
  return `Usage: ${SERVICE_NAME} ${subcommand.usage}\n\n${subcommand.summary}\n\nFlags:\n${flags}\n\n${WHERE_IT_RUNS}\n`;
}

const isHelp = (arg: string | undefined) => arg === "--help" || arg === "-h" || arg === "help";

const standardIo: Io = {
  out: (line) => process.stdout.write(line + "\n"),
  note: (line) => process.stderr.write(line + "\n"),
  readStdin: () => Bun.stdin.text(),
};

export async function runOperatorCommand(groupName: string, argv: string[], io: Io = standardIo): Promise<void> {
  const group = GROUPS[groupName];
  const [name, ...rest] = argv;
  if (isHelp(name)) return io.out(groupHelp(groupName).trimEnd());
  if (!name) throw new UsageError(`${groupName} needs a subcommand: ${Object.keys(group.subcommands).join(", ")} (try ${groupName} --help)`);
  const subcommand = group.subcommands[name];
  if (!subcommand) {
    throw new UsageError(`unknown command "${groupName} ${name}"; try one of: ${Object.keys(group.subcommands).join(", ")}`);
  }
  const label = `${groupName} ${name}`;
  if (rest.some((arg) => arg === "--help" || arg === "-h")) return io.out(subcommandHelp(subcommand).trimEnd());

  const args = parseArgs(rest, { ...subcommand.flags, ...COMMON_FLAGS }, label);
  const expected = subcommand.positionals ?? [];
  if (args.positionals.length < expected.length) throw new UsageError(`${label}: missing <${expected[args.positionals.length]}> (try --help)`);
  if (args.positionals.length > expected.length) throw new UsageError(`${label}: unexpected argument "${args.positionals[expected.length]}" (try --help)`);

  const config = loadConfig();
  // Operator output goes to stdout; log lines other than warnings would mix with it.
  setLogLevel(config.logLevel === "error" || config.logLevel === "silent" ? config.logLevel : "warn");
  const target = { config, socketPath: args.strings.socket };
  await subcommand.run(args, (operation, operationArgs) => runOperation(target, operation, operationArgs), io);
}
