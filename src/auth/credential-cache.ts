/**
 * A short in-process cache of resolved credentials, so that an authenticated request costs a map lookup
 * instead of a database round trip. Revocation, logout, disabling a principal and membership changes
 * call `invalidate`, which takes effect at once; the TTL bounds staleness of anything else.
 */
import type { EventBus } from "../core/event-bus";
import type { AuthChange } from "./identity";
import type { Principal } from "./principal";

interface Entry {
  principal: Principal;
  cachedUntil: number;
}

export class CredentialCache {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries = 50_000,
  ) {}

  get(credential: string, now = Date.now()): Principal | undefined {
    const entry = this.entries.get(credential);
    if (!entry) return undefined;
    const expiresAt = entry.principal.credential.expiresAt;
    if (entry.cachedUntil <= now || (expiresAt !== undefined && expiresAt <= now)) {
      this.entries.delete(credential);
      return undefined;
    }
    return entry.principal;
  }

  set(credential: string, principal: Principal, ttlMs = this.ttlMs): void {
    if (ttlMs <= 0) return;
    if (this.entries.size >= this.maxEntries) {
      // Maps iterate in insertion order: drop the oldest entry.
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.set(credential, { principal, cachedUntil: Date.now() + ttlMs });
  }

  /** Rare (logout, revoke, disable): a scan is cheaper than keeping secondary indexes on the hot path. */
  invalidate(target: { credentialId?: string; principalId?: string }): void {
    for (const [key, entry] of this.entries) {
      if (
        (target.credentialId && entry.principal.credential.id === target.credentialId) ||
        (target.principalId && entry.principal.id === target.principalId)
      ) {
        this.entries.delete(key);
      }
    }
  }

  /** Empties entries as credentials are revoked and principals change, here or (relayed) on other instances. */
  followChanges(changes: EventBus<AuthChange>): void {
    changes.on(
      "credential cache",
      (change) => {
        if (change.kind === "credential_revoked") this.invalidate({ credentialId: change.credentialId });
        else this.invalidate({ principalId: change.principalId });
      },
      // Inline: the request after a logout or revocation must already miss the cache.
      { inline: true },
    );
  }

  clear(): void {
    this.entries.clear();
  }
}
