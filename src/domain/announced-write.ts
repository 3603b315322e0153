/**
 * The one way a write of the domain announces what it did, when that must be as durable as the write:
 * the write runs in a transaction, `announce` collects its domain events, the bus's write listeners
 * (src/listeners.ts: the webhook outbox) get them inside that transaction, and once it has committed they
 * are emitted to every other listener as usual. Rolled back: nothing is emitted.
 *
 * The send statement (../modules/messages/send-statement.ts) is the exception, on purpose: the hot path
 * stays one statement, and what it announces (messages, control events, a run a message started) is
 * delivered from the message log itself (src/webhooks/dispatcher.ts).
 */
import type { EventBus } from "../core/event-bus";
import type { Db, Tx } from "../db/client";
import type { DomainEvent } from "./domain-events";

export type Announce = (event: DomainEvent) => void;

/** What a write needs: the database and the bus (a `Services` fits). */
export interface AnnouncingWriter {
  database: { db: Db };
  domainEvents: EventBus<DomainEvent, Tx>;
}

export async function writeAndAnnounce<T>(writer: AnnouncingWriter, work: (tx: Tx, announce: Announce) => Promise<T>): Promise<T> {
  const announced: DomainEvent[] = [];
  const result = await writer.database.db.transaction(async (tx) => {
    const value = await work(tx, (event) => void announced.push(event));
    await writer.domainEvents.written(announced, tx);
    return value;
  });
  for (const event of announced) writer.domainEvents.emit(event);
  return result;
}
