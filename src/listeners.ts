/**
 * Every listener of the process's domain events, and the realtime layer's listener of credential changes,
 * registered in one place under a name. Anything that reacts to committed writes (delivery to sockets
 * today; webhooks, metrics, run bookkeeping next) is added here, not inside the code that writes.
 *
 * The bus (src/core/event-bus.ts) guarantees that a listener cannot fail or delay the write: a throw is
 * logged and counted under the listener's name. Inline listeners run inside the write's call, in commit
 * order; use them only for what must happen before the caller continues. Write listeners run inside the
 * write's transaction (src/domain/announced-write.ts): only for what must be exactly as durable as the
 * write, since their failure fails it. docs/events.md lists the events.
 */
import { CONTROL_EVENTS } from "./domain/control-events";
import type { DomainEvent } from "./domain/domain-events";
import { controlEventsSent, domainEvents, watchListenerFailures } from "./metrics/registry";
import type { Tally } from "./metrics/instruments";
import { closeOnAuthChanges } from "./realtime/auth-watch";
import type { RealtimeHub } from "./realtime/hub";
import type { Services } from "./services";

/** Counts domain events by type and control events by name (src/metrics/registry.ts), off the write's path. */
function countDomainEvents(): (event: DomainEvent) => void {
  const byType = new Map<string, Tally>();
  const byControl = new Map<string, Tally>(CONTROL_EVENTS.map((name) => [name, controlEventsSent.labels(name)]));
  return (event) => {
    let counter = byType.get(event.type);
    if (!counter) byType.set(event.type, (counter = domainEvents.labels(event.type)));
    counter.inc();
    if (event.type === "control.sent") byControl.get(event.control.event)?.inc();
  };
}

export function registerListeners(services: Services, hub: RealtimeHub): () => void {
  const detach = [
    // Inline: frames are sequenced in the order writes commit, and the REST answer must not overtake the frame.
    services.domainEvents.on("realtime delivery", (event) => hub.publishDomainEvent(event), { inline: true }),
    // Inline: a paused run refuses the very next append, a cancelled one ends its streams at once.
    services.domainEvents.on(
      "streams follow their run",
      (event) => {
        if ((event.type === "control.sent" || event.type === "run.ended") && event.run) services.streams.runChanged(event.run);
      },
      { inline: true },
    ),
    // Inline for the same reason: a client told it was added may join at once and must find the topic's frames in order.
    services.domainEvents.on("principal notifications", (event) => hub.notifyPrincipals(event), { inline: true }),
    // In the write's transaction: an event committed is an event enqueued, even if the process dies at once.
    services.domainEvents.onWrite("webhook outbox", (events, tx) => services.webhooks.enqueueWithWrite(events, tx)),
    // Deferred: a send's events only hint the dispatcher which log grew (the log is their outbox); a send
    // never waits for webhooks, and with no endpoint enabled it costs nothing at all.
    services.domainEvents.on("webhook outbox", (event) => services.webhooks.handle(event)),
    closeOnAuthChanges(hub, services.identity, services.authChanges),
    services.domainEvents.on("metrics", countDomainEvents()),
    watchListenerFailures(services.domainEvents),
    watchListenerFailures(services.authChanges),
  ];
  return () => {
    for (const off of detach.splice(0)) off();
  };
}
