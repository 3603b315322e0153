/**
 * One open conversation, kept current from the socket: its participants, messages (streaming ones
 * growing as their text arrives), runs, who is typing and who is present. Loaded over REST, then live;
 * after a reconnect the SDK resumes the conversation from the last sequence seen (replaying what was
 * missed), and the model reloads the newest page too, for edits and deletions made meanwhile.
 */
import type {
  ConversationWithParticipants,
  ControlBroadcast,
  JoinResult,
  Message,
  MessagingClient,
  PresenceStatus,
  RealtimeClient,
  RealtimeEvents,
  Run,
} from "../client/index.ts";
import { errorText } from "./api.ts";
import { inSequence, messageOfBroadcast } from "./timeline.ts";

const CONTROL_EVENTS = ["stream.pause", "stream.resume", "stream.preempt", "stream.cancel", "stream.route", "stream.handoff", "stream.priority"] as const;
const PAGE = 50;

export interface ConversationSnapshot {
  conversation?: ConversationWithParticipants;
  messages: Message[];
  runs: Run[];
  typing: string[];
  presence: Record<string, PresenceStatus>;
  loaded: boolean;
  error?: string;
}

export class ConversationModel {
  private conversation?: ConversationWithParticipants;
  private readonly messages = new Map<string, Message>();
  private readonly runs = new Map<string, Run>();
  private readonly typing = new Set<string>();
  private presence: Record<string, PresenceStatus> = {};
  private loaded = false;
  private error?: string;
  private readonly detach: (() => void)[] = [];
  private disposed = false;

  constructor(
    private readonly client: MessagingClient,
    private readonly socket: RealtimeClient,
    readonly id: string,
    private readonly onChange: () => void,
  ) {}

  snapshot(): ConversationSnapshot {
    return {
      conversation: this.conversation,
      messages: inSequence(this.messages.values()),
      runs: [...this.runs.values()].sort((a, b) => b.started_at.localeCompare(a.started_at)),
      typing: [...this.typing],
      presence: this.presence,
      loaded: this.loaded,
      error: this.error,
    };
  }

  /** Listens first, then loads: whatever happens during the load arrives as an event and is merged. */
  async start(): Promise<void> {
    this.listen();
    await this.load();
  }

  dispose(): void {
    this.disposed = true;
    for (const off of this.detach.splice(0)) off();
  }

  /** The outcome of an action of the page: its error in words (a refused send, a refused button), or none. */
  report(error?: unknown): void {
    this.error = error === undefined ? undefined : errorText(error);
    this.changed();
  }

  private changed(): void {
    if (!this.disposed) this.onChange();
  }

  private async load(): Promise<void> {
    try {
      // Opened straight from a link, the view may start before the shell's connect() has run.
      await this.socket.connect();
      const joined = await this.socket.join(this.id);
      await this.fetchState();
      this.applyJoin(joined);
      this.loaded = true;
      this.error = undefined;
    } catch (error) {
      this.error = errorText(error);
    }
    this.changed();
  }

  /** A page of REST messages: every live message in its range is in it, so one missing there was deleted. */
  private mergePage(page: Message[]): void {
    if (page.length === 0) return;
    const [from, to] = [page[0].sequence, page[page.length - 1].sequence];
    const ids = new Set(page.map((m) => m.id));
    // Later ones may have arrived live after the page was read: only its own range is known.
    for (const [id, message] of this.messages) if (message.sequence >= from && message.sequence <= to && !ids.has(id)) this.messages.delete(id);
    for (const message of page) this.put(message);
  }

  private applyJoin(joined: JoinResult): void {
    for (const run of joined.runs ?? []) this.runs.set(run.id, run);
    this.presence = Object.fromEntries((joined.presence ?? []).map((p) => [p.userId, p.status]));
  }

  /** A message as the server last told it; a streaming message keeps the longer text the deltas gave. */
  private put(message: Message): void {
    if (message.deleted_at) {
      this.messages.delete(message.id);
      return;
    }
    const known = this.messages.get(message.id);
    const streamed = this.socket.streamText(message.id);
    const content = message.stream_state === "streaming" && streamed && streamed.length > message.content.length ? streamed : message.content;
    if (known && known.version > message.version) return;
    // A read that began before the stream ended may answer after it: the end stands.
    if (known && known.version === message.version && known.stream_state && known.stream_state !== "streaming" && message.stream_state === "streaming") return;
    this.messages.set(message.id, { ...message, content });
  }

  private on<K extends keyof RealtimeEvents>(event: K, listener: (data: RealtimeEvents[K]) => void): void {
    this.detach.push(this.socket.on(event, listener));
  }

  private listen(): void {
    const mine = (conversationId: string) => conversationId === this.id;
    this.on("message:new", (m) => {
      if (!mine(m.conversation_id)) return;
      this.put(m);
      this.typing.delete(m.sender_id);
      this.changed();
    });
    this.on("message:updated", (m) => {
      if (mine(m.conversation_id)) (this.put(m), this.changed());
    });
    this.on("message:deleted", (d) => {
      if (mine(d.conversationId)) (this.messages.delete(d.id), this.changed());
    });
    this.on("stream:text", (s) => {
      const message = this.messages.get(s.messageId);
      if (!mine(s.conversationId) || !message) return;
      this.messages.set(s.messageId, { ...message, content: s.text, stream_state: s.state });
      this.changed();
    });
    for (const event of CONTROL_EVENTS) this.on(event, (c) => mine(c.conversationId) && this.control(c));
    this.on("run:started", (run) => {
      if (mine(run.conversation_id)) (this.runs.set(run.id, run), this.changed());
    });
    this.on("run:ended", (ended) => {
      const run = this.runs.get(ended.runId);
      if (!mine(ended.conversationId) || !run) return;
      this.runs.set(run.id, { ...run, state: ended.state, ended_at: ended.endedAt, end_reason: ended.endReason });
      this.changed();
    });
    this.on("typing:started", (t) => {
      if (mine(t.conversationId)) (this.typing.add(t.userId), this.changed());
    });
    this.on("typing:stopped", (t) => {
      if (mine(t.conversationId)) (this.typing.delete(t.userId), this.changed());
    });
    this.on("presence:changed", (p) => {
      if (mine(p.conversationId)) ((this.presence = { ...this.presence, [p.userId]: p.status }), this.changed());
    });
    for (const event of ["participant:joined", "participant:left", "participant:updated"] as const) {
      this.on(event, (p) => mine(p.conversationId) && void this.reloadParticipants());
    }
    this.on("conversation:updated", (c) => {
      if (mine(c.id) && this.conversation) ((this.conversation = { ...this.conversation, ...c }), this.changed());
    });
    this.on("resumed", (joined) => {
      if (!mine(joined.conversationId)) return;
      this.applyJoin(joined);
      void this.reload();
    });
    // While disconnected nobody is seen typing; the join after the reconnect tells who is present.
    this.on("close", () => (this.typing.clear(), this.changed()));
  }

  /** A control event: in the timeline, and applied to its run. */
  private control(control: ControlBroadcast): void {
    this.put(messageOfBroadcast(control));
    const run = control.runId ? this.runs.get(control.runId) : undefined;
    if (run) {
      const target = control.target as { principalId?: string } | undefined;
      const moved = (control.event === "stream.route" || control.event === "stream.handoff") && target?.principalId;
      this.runs.set(run.id, {
        ...run,
        state: (control.to as Run["state"] | undefined) ?? run.state,
        owner_id: moved ? target.principalId! : run.owner_id,
        priority: (control.priority as Run["priority"] | undefined) ?? run.priority,
      });
    }
    this.changed();
  }

  private async reloadParticipants(): Promise<void> {
    try {
      this.conversation = await this.client.getConversation(this.id);
    } catch (error) {
      this.error = errorText(error);
    }
    this.changed();
  }

  /** The conversation, its newest page of messages (merged with what is here) and its runs, over REST. */
  private async fetchState(): Promise<void> {
    const [conversation, page, runs] = await Promise.all([
      this.client.getConversation(this.id),
      this.client.listMessages(this.id, { limit: PAGE }),
      this.client.listRuns(this.id, { limit: 20 }),
    ]);
    this.conversation = conversation;
    this.mergePage(page);
    for (const run of runs) this.runs.set(run.id, run);
  }

  /** After a resume: the newest page again (edits and deletions are not replayed), and the runs. */
  private async reload(): Promise<void> {
    try {
      await this.fetchState();
      this.error = undefined;
    } catch (error) {
      this.error = errorText(error);
    }
    this.changed();
  }
}
