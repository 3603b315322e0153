/**
 * Open sockets follow their credential: a revoked credential closes its sockets with 4401 at once, and a
 * changed principal (disabled, new grants) is authenticated again with the credential the socket opened
 * with, keeping the socket only if that still succeeds.
 */
import { actAs } from "../auth/act-as";
import type { AuthChange } from "../auth/identity";
import { AppError } from "../core/errors";
import type { IdentityProvider } from "../auth/identity";
import type { EventBus } from "../core/event-bus";
import { describeError, log } from "../log";
import { CLOSE, type Connection } from "./connection";
import { errorFrame } from "./frames";
import type { RealtimeHub } from "./hub";

export function closeOnAuthChanges(hub: RealtimeHub, identity: IdentityProvider, authChanges: EventBus<AuthChange>): () => void {
  return authChanges.on(
    "open sockets follow their credential",
    (change) => {
    if (change.kind === "credential_revoked") {
      for (const connection of [...hub.connections()]) {
        if (connection.principal.credential.id === change.credentialId) connection.close(CLOSE.unauthorized, "credential revoked");
      }
      return;
    }
    for (const connection of [...hub.connections()]) {
      // A socket acting for a principal depends on both: the one acted for and the caller.
      const { principal } = connection;
      if (principal.id === change.principalId || principal.actedBy?.id === change.principalId) void reauthenticate(hub, identity, connection);
    }
    },
    { inline: true },
  );
}

async function reauthenticate(hub: RealtimeHub, identity: IdentityProvider, connection: Connection): Promise<void> {
  try {
    const outcome = await identity.authenticate(connection.credentials);
    if (connection.closed) return;
    if (!outcome?.ok) {
      connection.close(CLOSE.unauthorized, outcome?.message ?? "authentication required");
      return;
    }
    let principal = outcome.principal;
    if (connection.principal.actedBy) {
      try {
        principal = await actAs(identity, principal, connection.principal.id);
      } catch (error) {
        connection.close(CLOSE.unauthorized, error instanceof AppError ? error.message : "acting no longer allowed");
        return;
      }
      if (connection.closed) return;
    }
    connection.principal = principal;
    await recheckObserved(hub, connection);
  } catch (error) {
    // Keep the socket: an unreachable database must not disconnect everyone; the next change retries.
    log.warn("socket re-authentication failed", { connectionId: connection.id, ...describeError(error) });
  }
}

/** A watcher who lost the right to observe (e.g. an admin grant withdrawn) stops receiving those topics. */
async function recheckObserved(hub: RealtimeHub, connection: Connection): Promise<void> {
  for (const [conversationId, joined] of [...connection.joined]) {
    if (!joined.observer) continue;
    try {
      await hub.store.authorizeReader(connection.principal, conversationId);
    } catch {
      hub.unsubscribe(connection, conversationId);
      connection.send(errorFrame("access_revoked", "You may no longer watch this conversation", "join:conversation"));
    }
  }
}
