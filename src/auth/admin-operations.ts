/**
 * The operator operations by name, with their arguments as plain JSON: the one dispatch table shared by
 * the admin socket (the server runs the operation) and the CLI's direct path (the CLI runs it on the
 * database itself). Results are returned as JSON values so both paths print the same thing.
 */
import { badRequest } from "../http/errors";
import type { IdentityAdmin, NewKey, NewUser } from "./identity-admin";

type Args = Record<string, unknown>;

const OPERATIONS = {
  createUser: (admin: IdentityAdmin, args: Args) => admin.createUser(args as unknown as NewUser),
  listUsers: (admin: IdentityAdmin) => admin.listUsers(),
  disableUser: (admin: IdentityAdmin, args: Args) => admin.disableUser(String(args.user ?? "")),
  enableUser: (admin: IdentityAdmin, args: Args) => admin.enableUser(String(args.user ?? "")),
  createKey: (admin: IdentityAdmin, args: Args) => admin.createKey(args as unknown as NewKey),
  listKeys: (admin: IdentityAdmin, args: Args) =>
    admin.listKeys({ principalId: typeof args.principalId === "string" ? args.principalId : undefined }),
  revokeKey: (admin: IdentityAdmin, args: Args) => admin.revokeKey(String(args.key ?? "")),
  createOrg: (admin: IdentityAdmin, args: Args) =>
    admin.createOrg(String(args.id ?? ""), typeof args.name === "string" ? args.name : undefined),
  listOrgs: (admin: IdentityAdmin) => admin.listOrgs(),
} satisfies Record<string, (admin: IdentityAdmin, args: Args) => Promise<unknown>>;

export type AdminOperation = keyof typeof OPERATIONS;

export function isAdminOperation(name: string): name is AdminOperation {
  return Object.hasOwn(OPERATIONS, name);
}

export async function runAdminOperation(admin: IdentityAdmin, operation: string, args: unknown): Promise<unknown> {
  if (!isAdminOperation(operation)) throw badRequest(`Unknown operation ${operation}`, "unknown_operation");
  const plainArgs = args && typeof args === "object" && !Array.isArray(args) ? (args as Args) : {};
  const result = await OPERATIONS[operation](admin, plainArgs);
  // Dates become ISO strings, exactly as they would after crossing the socket.
  return JSON.parse(JSON.stringify(result));
}
