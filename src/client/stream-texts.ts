/**
 * Streaming messages as text that grows (docs/streaming.md): the content a snapshot gave (`message:new`,
 * `message:updated`), extended by each `message:delta` at its offset. A delta already covered is a
 * duplicate (a resume replayed it in the snapshot) and is dropped; one that overlaps adds only its new
 * part; one past the end leaves a gap that the next snapshot closes.
 */
import type { Message, MessageDelta, StreamState } from "./types.js";

export interface StreamText {
  conversationId: string;
  messageId: string;
  runId?: string;
  /** The whole content so far. */
  text: string;
  /** What this change added (empty for a snapshot that changed nothing). */
  added: string;
  state: StreamState;
}

interface Entry {
  conversationId: string;
  runId?: string;
  text: string;
  state: StreamState;
}

/** Streams this many ended ones back are forgotten (their text is in the message by then). */
const ENDED_KEPT = 256;

export class StreamTexts {
  private readonly entries = new Map<string, Entry>();
  private readonly ended: string[] = [];
  duplicates = 0;
  gaps = 0;

  text(messageId: string): string | undefined {
    return this.entries.get(messageId)?.text;
  }

  /** A message with its content (new, updated, replayed): the text is at least that. */
  snapshot(message: Message): StreamText | undefined {
    if (!message.stream_state) return undefined;
    const entry = this.entries.get(message.id);
    const before = entry?.text ?? "";
    let text = message.content;
    // Another instance may know less than the deltas already heard: keep the longer text it begins.
    if (message.stream_state === "streaming" && before.length > text.length && before.startsWith(text)) text = before;
    const next: Entry = { conversationId: message.conversation_id, runId: message.run_id ?? undefined, text, state: message.stream_state };
    this.entries.set(message.id, next);
    if (message.stream_state !== "streaming") this.forgetLater(message.id);
    return { ...this.view(message.id, next), added: text.startsWith(before) ? text.slice(before.length) : text };
  }

  /** A live delta; undefined when it adds nothing (a duplicate, or a gap). */
  delta(delta: MessageDelta): StreamText | undefined {
    let entry = this.entries.get(delta.messageId);
    if (!entry) {
      if (delta.offset !== 0) {
        this.gaps++;
        return undefined;
      }
      entry = { conversationId: delta.conversationId, runId: delta.runId, text: "", state: "streaming" };
      this.entries.set(delta.messageId, entry);
    }
    const end = delta.offset + delta.delta.length;
    if (end <= entry.text.length) {
      this.duplicates++;
      return undefined;
    }
    if (delta.offset > entry.text.length) {
      this.gaps++;
      return undefined;
    }
    const added = delta.delta.slice(entry.text.length - delta.offset);
    entry.text += added;
    return { ...this.view(delta.messageId, entry), added };
  }

  private view(messageId: string, entry: Entry): Omit<StreamText, "added"> {
    return { conversationId: entry.conversationId, messageId, ...(entry.runId !== undefined && { runId: entry.runId }), text: entry.text, state: entry.state };
  }

  private forgetLater(messageId: string): void {
    this.ended.push(messageId);
    while (this.ended.length > ENDED_KEPT) this.entries.delete(this.ended.shift()!);
  }
}
