/**
 * Carries AuthChange events between processes sharing one PostgreSQL database, so that a revocation or a
 * disable made through any instance (or by the CLI writing to the database directly) empties every
 * instance's credential cache at once rather than when the cache entry expires.
 *
 * Every local change goes out on `symbia_auth` through the same NotifyChannel as the frame relay (outside
 * any transaction, coalesced, own notifications ignored); received changes are re-emitted on the local
 * bus. On the embedded database there is only ever one process, and nothing is relayed.
 */
import type { AuthChange } from "../../auth/identity";
import type { EventBus } from "../../core/event-bus";
import type { Database } from "../../db/client";
import { randomUUID } from "node:crypto";
import { NotifyChannel } from "./notify-channel";

export const AUTH_CHANNEL = "symbia_auth";

export interface AuthRelay {
  /** Settles once every change emitted so far has been handed to PostgreSQL. */
  flush(): Promise<void>;
  stop(): Promise<void>;
}

function isAuthChange(value: unknown): value is AuthChange {
  const change = value as AuthChange | undefined;
  if (change?.kind === "credential_revoked") return typeof change.credentialId === "string";
  if (change?.kind === "principal_changed") return typeof change.principalId === "string";
  return false;
}

/** `listen: false` is for short-lived publishers (the CLI), which only need to tell the servers. */
export async function startAuthRelay(
  database: Database,
  changes: EventBus<AuthChange>,
  options: { listen: boolean },
): Promise<AuthRelay> {
  const { pg, url } = database;
  if (database.kind !== "postgres" || !pg || !url) return { flush: async () => {}, stop: async () => {} };

  // True while re-emitting a received change, so that it is not sent back out.
  let relaying = false;
  const channel = new NotifyChannel<AuthChange>({
    url,
    channel: AUTH_CHANNEL,
    origin: randomUUID(),
    listener: options.listen ? pg : undefined,
    // Revocations should take effect everywhere at once: no spacing between sends.
    spacingMs: 0,
    onItems: (items) => {
      relaying = true;
      try {
        for (const change of items) if (isAuthChange(change)) changes.emit(change);
      } finally {
        relaying = false;
      }
    },
  });
  await channel.start();
  const unsubscribe = changes.on(
    "auth relay",
    (change) => {
      if (!relaying) channel.send(change);
    },
    { inline: true },
  );
  return {
    flush: () => channel.drain(),
    async stop() {
      unsubscribe();
      await channel.stop();
    },
  };
}
