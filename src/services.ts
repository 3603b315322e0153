/**
 * The long-lived pieces one server process is made of, built once at start (or per test) and passed to
 * the HTTP modules and the realtime layer. Nothing in here listens on a port.
 */
import type { AuthChange } from "./auth/identity";
import { LocalIdentity } from "./auth/local-identity";
import type { IdentityProvider } from "./auth/identity";
import { RemoteIdentity } from "./auth/remote-identity";
import type { Config } from "./config";
import type { Database, Tx } from "./db/client";
import type { DomainEvent } from "./domain/domain-events";
import { EventBus } from "./core/event-bus";
import { MessageStreams } from "./domain/message-streams";
import { WebhookOutbox } from "./webhooks/outbox";
import { StatementBatcher } from "./db/statement-batcher";

export interface Services {
  config: Config;
  database: Database;
  identity: IdentityProvider;
  /** Credential and principal changes: caches and open sockets react to them. */
  authChanges: EventBus<AuthChange>;
  /**
   * Committed writes of the messaging domain: the realtime hub publishes them. Its write listeners get
   * them inside the write's transaction (src/domain/announced-write.ts).
   */
  domainEvents: EventBus<DomainEvent, Tx>;
  /** Streaming messages held by this instance (docs/streaming.md). */
  streams: MessageStreams;
  /** Where domain events become webhook deliveries (src/webhooks/). */
  webhooks: WebhookOutbox;
  /** Every send's statement goes through here: concurrent sends share a transaction (src/db/statement-batcher.ts). */
  sends: StatementBatcher;
}

export function createServices(config: Config, database: Database): Services {
  const authChanges = new EventBus<AuthChange>("auth changes", (change) => ({ change: change.kind }));
  const identity = config.identityUrl
    ? new RemoteIdentity(config, authChanges)
    : new LocalIdentity(database.db, config, authChanges);
  const domainEvents = new EventBus<DomainEvent, Tx>("domain events", (event) => ({ event: event.type, conversationId: event.conversationId }));
  return {
    config,
    database,
    identity,
    authChanges,
    domainEvents,
    streams: new MessageStreams(config, database, domainEvents),
    webhooks: new WebhookOutbox(database),
    sends: new StatementBatcher(database, {
      // The embedded database runs one statement at a time: one lane.
      lanes: database.kind === "pglite" ? 1 : config.sendBatchLanes,
      maxBatch: config.sendBatchMax,
    }),
  };
}
