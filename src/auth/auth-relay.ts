/**
 * Carries AuthChange events between processes sharing one PostgreSQL database, so that a revocation or a
 * disable made through any instance (or by the CLI writing to the database directly) empties every
 * instance's credential cache at once rather than when the cache entry expires.
 *
 * Every local change is sent with NOTIFY on `symbia_auth`, outside any transaction (NOTIFY inside a write
 * transaction serialises commits database-wide); received changes are re-emitted on the local bus. Each
 * process tags what it sends with its own id and ignores its own notifications. On the embedded database
 * there is only ever one process, so the relay does nothing.
 */
import { randomUUID } from "node:crypto";
import type { Database } from "../db/client";
import type { Bus } from "../events";
import { describeError, log } from "../log";
import type { AuthChange } from "./local-identity";

export const AUTH_CHANNEL = "symbia_auth";

interface Envelope {
  origin: string;
  change: AuthChange;
}

export interface AuthRelay {
  /** Settles once every change emitted so far has been handed to PostgreSQL. */
  flush(): Promise<void>;
  stop(): Promise<void>;
}

function parseEnvelope(payload: string): Envelope | undefined {
  try {
    const value = JSON.parse(payload) as Envelope;
    const change = value?.change;
    if (typeof value?.origin !== "string" || !change) return undefined;
    if (change.kind === "credential_revoked" && typeof change.credentialId === "string") return value;
    if (change.kind === "principal_changed" && typeof change.principalId === "string") return value;
  } catch {
    // not ours
  }
  return undefined;
}

/**
 * `listen: false` is for short-lived publishers (the CLI), which only need to tell the servers.
 */
export async function startAuthRelay(database: Database, changes: Bus<AuthChange>, options: { listen: boolean }): Promise<AuthRelay> {
  const pg = database.pg;
  if (database.kind !== "postgres" || !pg) return { flush: async () => {}, stop: async () => {} };

  const origin = randomUUID();
  const pending = new Set<Promise<unknown>>();
  // True while re-emitting a received change, so that it is not sent back out.
  let relaying = false;

  const unsubscribe = changes.on((change) => {
    if (relaying) return;
    const sent: Promise<unknown> = Promise.resolve(pg.notify(AUTH_CHANNEL, JSON.stringify({ origin, change } satisfies Envelope)))
      .catch((error) => log.warn("auth change not relayed to other instances", { kind: change.kind, ...describeError(error) }))
      .finally(() => pending.delete(sent));
    pending.add(sent);
  });

  let listener: { unlisten(): Promise<void> } | undefined;
  if (options.listen) {
    try {
      listener = await pg.listen(AUTH_CHANNEL, (payload) => {
        const envelope = parseEnvelope(payload);
        if (!envelope || envelope.origin === origin) return;
        relaying = true;
        try {
          changes.emit(envelope.change);
        } finally {
          relaying = false;
        }
      });
    } catch (error) {
      unsubscribe();
      throw error;
    }
  }

  const flush = async () => {
    while (pending.size > 0) await Promise.all([...pending]);
  };
  return {
    flush,
    async stop() {
      unsubscribe();
      await flush();
      await listener?.unlisten().catch(() => {});
    },
  };
}
