/**
 * An agent's side of a run: send into it, end it, and stop at once when someone pauses, preempts, cancels
 * or takes it away. `signal` aborts on any of those, so it can go straight to a model call
 * (`fetch(url, { signal: run.signal })`); after a resume there is a fresh, unaborted signal.
 *
 *   const run = await client.startRun(conversationId, { socket });
 *   for await (const token of model.stream({ signal: run.signal })) …
 *   await run.complete();
 */
import type { RealtimeClient } from "./realtime.js";
import type { RestClient } from "./rest.js";
import type { ControlBroadcast, Message, Run, RunEnded, RunState, SendMessageInput } from "./types.js";

export type RunStopReason = "paused" | "preempted" | "cancelled" | "handed-off" | "completed" | "failed";

export interface RunChange {
  state: RunState;
  /** Who owns the run now (a route or handoff changes it). */
  ownerId: string;
  /** The control event that changed it, when one did. */
  event?: ControlBroadcast;
}

export class RunHandle {
  private controller = new AbortController();
  private readonly listeners = new Set<(change: RunChange) => void>();
  private readonly detach: (() => void)[] = [];
  private current: Run;

  constructor(
    private readonly rest: RestClient,
    private readonly socket: RealtimeClient,
    run: Run,
    /** The principal this handle acts for: the run is "handed off" once someone else owns it. */
    private readonly selfId: string,
  ) {
    this.current = run;
    const onControl = (event: ControlBroadcast) => {
      if (event.conversationId !== run.conversation_id || event.runId !== run.id || !event.to) return;
      let ownerId = this.current.owner_id;
      if ((event.event === "stream.route" || event.event === "stream.handoff") && typeof event.target === "object" && event.target) {
        ownerId = (event.target as { principalId?: string }).principalId ?? ownerId;
      }
      this.apply({ state: event.to as RunState, ownerId, event });
    };
    for (const name of ["stream.pause", "stream.resume", "stream.preempt", "stream.cancel", "stream.route", "stream.handoff", "stream.priority"] as const) {
      this.detach.push(socket.on(name, onControl));
    }
    this.detach.push(
      socket.on("run:ended", (ended: RunEnded) => {
        if (ended.conversationId === run.conversation_id && ended.runId === run.id) this.apply({ state: ended.state, ownerId: this.current.owner_id });
      }),
    );
  }

  get id(): string {
    return this.current.id;
  }

  get conversationId(): string {
    return this.current.conversation_id;
  }

  get state(): RunState {
    return this.current.state;
  }

  get run(): Run {
    return this.current;
  }

  /** Aborted once the run may not go on (paused, preempted, cancelled, ended, or owned by someone else). */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Whether this handle may post into the run now. */
  get mayContinue(): boolean {
    return this.current.state === "active" && this.current.owner_id === this.selfId;
  }

  onStateChange(listener: (change: RunChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** A message in the run, over the socket. */
  send(input: Omit<SendMessageInput, "runId">): Promise<Message> {
    return this.socket.send(this.current.conversation_id, { ...input, runId: this.current.id });
  }

  async complete(): Promise<Run> {
    const run = await this.rest.completeRun(this.current.conversation_id, this.current.id);
    this.apply({ state: run.state, ownerId: run.owner_id });
    return run;
  }

  async fail(reason?: string): Promise<Run> {
    const run = await this.rest.failRun(this.current.conversation_id, this.current.id, reason);
    this.apply({ state: run.state, ownerId: run.owner_id });
    return run;
  }

  /** Stops listening (the run itself goes on until it is ended). */
  dispose(): void {
    for (const off of this.detach.splice(0)) off();
    this.listeners.clear();
  }

  /** Why the signal aborted, once it has. */
  static reasonOf(signal: AbortSignal): RunStopReason | undefined {
    return signal.aborted ? (signal.reason as { runStop?: RunStopReason })?.runStop : undefined;
  }

  private apply(change: RunChange): void {
    const wasGoing = this.mayContinue;
    this.current = { ...this.current, state: change.state, owner_id: change.ownerId };
    if (wasGoing && !this.mayContinue) {
      const reason: RunStopReason =
        change.ownerId !== this.selfId ? "handed-off" : change.state === "active" ? "paused" : (change.state as RunStopReason);
      this.controller.abort(Object.assign(new Error(`run ${this.current.id} ${reason}`), { name: "AbortError", runStop: reason }));
    } else if (!wasGoing && this.mayContinue) {
      this.controller = new AbortController();
    }
    for (const listener of this.listeners) listener(change);
    if (["completed", "failed", "cancelled"].includes(change.state)) this.dispose();
  }
}
