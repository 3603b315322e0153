/**
 * The operator operations by name, with their arguments as plain JSON: the one dispatch table shared by
 * the admin socket (the server runs the operation) and the CLI's direct path (the CLI runs it on the
 * database itself). Results are returned as JSON values so both paths print the same thing.
 */
import { fail } from "../core/errors";
import type { IdentityDirectory, NewKey, NewUser } from "../auth/identity-directory";
import { loadConfig } from "../config";
import {
  createWebhookAsOperator,
  deleteWebhookAsOperator,
  disableWebhookAsOperator,
  listWebhooksAsOperator,
  type OperatorWebhookInput,
} from "../modules/webhooks/service";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const webhookId = (args: Args) => {
  const id = String(args.id ?? "");
  if (!UUID.test(id)) throw fail.not_found("Webhook endpoint not found");
  return id;
};

type Args = Record<string, unknown>;

const OPERATIONS = {
  createUser: (admin: IdentityDirectory, args: Args) => admin.createUser(args as unknown as NewUser),
  listUsers: (admin: IdentityDirectory) => admin.listUsers(),
  disableUser: (admin: IdentityDirectory, args: Args) => admin.disableUser(String(args.user ?? "")),
  enableUser: (admin: IdentityDirectory, args: Args) => admin.enableUser(String(args.user ?? "")),
  createKey: (admin: IdentityDirectory, args: Args) => admin.createKey(args as unknown as NewKey),
  listKeys: (admin: IdentityDirectory, args: Args) =>
    admin.listKeys({ principalId: typeof args.principalId === "string" ? args.principalId : undefined }),
  revokeKey: (admin: IdentityDirectory, args: Args) => admin.revokeKey(String(args.key ?? "")),
  createOrg: (admin: IdentityDirectory, args: Args) =>
    admin.createOrg(String(args.id ?? ""), typeof args.name === "string" ? args.name : undefined),
  listOrgs: (admin: IdentityDirectory) => admin.listOrgs(),
  // The address rule is the environment's where the operation runs (the server, or the CLI itself).
  createWebhook: (admin: IdentityDirectory, args: Args) =>
    createWebhookAsOperator(admin.db, loadConfig().webhooks.allowPrivate, args as unknown as OperatorWebhookInput),
  listWebhooks: (admin: IdentityDirectory) => listWebhooksAsOperator(admin.db),
  disableWebhook: (admin: IdentityDirectory, args: Args) => disableWebhookAsOperator(admin.db, webhookId(args)),
  deleteWebhook: (admin: IdentityDirectory, args: Args) => deleteWebhookAsOperator(admin.db, webhookId(args)),
} satisfies Record<string, (admin: IdentityDirectory, args: Args) => Promise<unknown>>;

export type OperatorOperation = keyof typeof OPERATIONS;

export function isOperatorOperation(name: string): name is OperatorOperation {
  return Object.hasOwn(OPERATIONS, name);
}

export async function runOperatorOperation(admin: IdentityDirectory, operation: string, args: unknown): Promise<unknown> {
  if (!isOperatorOperation(operation)) throw fail.unknown_operation(`Unknown operation ${operation}`);
  const plainArgs = args && typeof args === "object" && !Array.isArray(args) ? (args as Args) : {};
  const result = await OPERATIONS[operation](admin, plainArgs);
  // Dates become ISO strings, exactly as they would after crossing the socket.
  return JSON.parse(JSON.stringify(result));
}
