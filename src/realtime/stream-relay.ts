/**
 * Carries the stream requests of src/domain/stream-peers.ts over the broker, whatever it is.
 *
 * - A request goes to every instance; only the holder of the stream acts on it and answers, to the asker
 *   alone. No answer within ASK_TIMEOUT_MS means that no live instance holds the stream.
 * - A snapshot (the content so far) goes back as frames through `Broker.publish`, so that it passes each
 *   receiver's ordering stage in its place among the stream's deltas: the asker's mirror starts exactly
 *   where the next relayed delta begins.
 * - Texts longer than PART_LENGTH travel in parts, reassembled by the receiver (a notification carries at
 *   most 8,000 bytes; 1,000 UTF-16 units stay below that even when every one is escaped).
 */
import { randomUUID } from "node:crypto";
import type { StreamAnswer, StreamHolder, StreamPeers, StreamRequest, RunStateChange } from "../domain/stream-peers";
import type { RunResource } from "../domain/resources";
import { describeError, log } from "../log";
import type { Broker, StreamSignal } from "./broker";
import type { StreamSnapshotPart, TopicFrame } from "./frames";

const ASK_TIMEOUT_MS = 2_000;
const PART_LENGTH = 1_000;

type Forwarded = Extract<StreamRequest, { op: "append" | "finish" }>;

interface Pending {
  resolve: (answer: StreamAnswer | undefined) => void;
  timer: ReturnType<typeof setTimeout>;
  /** Snapshot parts received so far. */
  parts?: string[];
}

/** Splits a text into parts of at most PART_LENGTH units, never between the halves of a surrogate pair. */
export function splitText(text: string, partLength = PART_LENGTH): string[] {
  if (text.length <= partLength) return [text];
  const parts: string[] = [];
  let start = 0;
  while (start < text.length) {
    let end = Math.min(start + partLength, text.length);
    const last = text.charCodeAt(end - 1);
    if (end < text.length && last >= 0xd800 && last <= 0xdbff) end--;
    parts.push(text.slice(start, end));
    start = end;
  }
  return parts;
}

export class StreamRelay implements StreamPeers {
  private readonly pending = new Map<string, Pending>();
  /** Requests arriving in parts, by asker and id. */
  private readonly assembling = new Map<string, string[]>();
  /** Forwarded requests are applied one after another, in the order they arrived. */
  private applying: Promise<void> = Promise.resolve();

  constructor(
    private readonly broker: () => Broker,
    private readonly holder: StreamHolder,
  ) {}

  ask(request: Forwarded): Promise<StreamAnswer | undefined> {
    const broker = this.broker();
    if (broker.peers().length === 0) return Promise.resolve(undefined);
    const id = randomUUID();
    const answer = this.awaitAnswer(id);
    const text = request.op === "append" ? request.delta : request.content;
    const parts = text === undefined ? [undefined] : splitText(text);
    parts.forEach((part, index) => {
      const piece: StreamRequest = request.op === "append" ? { ...request, delta: part ?? "" } : { ...request, content: part };
      broker.signalStreams({ kind: "ask", id, from: broker.instanceId, request: piece, part: parts.length > 1 ? [index, parts.length] : undefined });
    });
    return answer;
  }

  async snapshot(request: Extract<StreamRequest, { op: "snapshot" }>): Promise<boolean> {
    const broker = this.broker();
    if (broker.peers().length === 0) return false;
    const id = randomUUID();
    const answer = this.awaitAnswer(id);
    broker.signalStreams({ kind: "ask", id, from: broker.instanceId, request });
    return (await answer)?.ok === true;
  }

  runChanged(run: RunStateChange): void {
    const broker = this.broker();
    if (broker.peers().length > 0) broker.signalStreams({ kind: "run", conversationId: run.conversation_id, runId: run.id, state: run.state });
  }

  holderId(): string | undefined {
    const broker = this.broker();
    return broker.name === "local" ? undefined : broker.instanceId;
  }

  liveInstances(): string[] | undefined {
    const broker = this.broker();
    const peers = broker.livePeers();
    return peers && [...peers, broker.instanceId];
  }

  /** A signal from another instance (the broker's hub hands it here). */
  received(signal: StreamSignal): void {
    switch (signal.kind) {
      case "ask":
        this.asked(signal);
        break;
      case "answer":
        if (signal.to === this.broker().instanceId) this.settle(signal.id, signal.answer);
        break;
      case "run":
        this.holder.remoteRunChanged({ id: signal.runId, conversation_id: signal.conversationId, state: signal.state as RunResource["state"] });
        break;
    }
  }

  /** A snapshot frame reached this instance's ordering stage exit: in its place among the deltas. */
  snapshotPart(part: StreamSnapshotPart, conversationId: string): void {
    if (part.to !== this.broker().instanceId) return;
    const pending = this.pending.get(part.id);
    if (!pending) return;
    pending.parts ??= [];
    pending.parts[part.index] = part.text;
    if (pending.parts.filter((p) => p !== undefined).length < part.count) return;
    this.holder.mirrorSeeded(part.messageId, conversationId, pending.parts.join(""));
    this.settle(part.id, { ok: true, value: null });
  }

  private asked(signal: Extract<StreamSignal, { kind: "ask" }>): void {
    let { request } = signal;
    if (request.op === "snapshot") {
      const { conversationId, messageId } = request;
      const content = this.holder.heldContent(messageId);
      if (content === undefined) return;
      const parts = splitText(content);
      const broker = this.broker();
      parts.forEach((text, index) => {
        const frame: TopicFrame = {
          conversationId,
          frame: "",
          streamSnapshot: { to: signal.from, id: signal.id, messageId, index, count: parts.length, text },
        };
        broker.publish(frame);
      });
      return;
    }
    if (signal.part) {
      const key = `${signal.from}:${signal.id}`;
      const texts = this.assembling.get(key) ?? [];
      texts[signal.part[0]] = (request.op === "append" ? request.delta : request.content) ?? "";
      if (texts.filter((t) => t !== undefined).length < signal.part[1]) {
        // Parts of a request whose rest was lost must not pile up.
        if (this.assembling.size > 1_000) this.assembling.clear();
        this.assembling.set(key, texts);
        return;
      }
      this.assembling.delete(key);
      request = request.op === "append" ? { ...request, delta: texts.join("") } : { ...request, content: texts.join("") };
    }
    const forwarded = request;
    this.applying = this.applying
      .then(async () => {
        const answer = await this.holder.answer(forwarded);
        if (answer) this.broker().signalStreams({ kind: "answer", id: signal.id, to: signal.from, answer });
      })
      .catch((error) => log.warn("stream request not answered", describeError(error)));
  }

  private awaitAnswer(id: string): Promise<StreamAnswer | undefined> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.settle(id, undefined), ASK_TIMEOUT_MS);
      this.pending.set(id, { resolve, timer });
    });
  }

  private settle(id: string, answer: StreamAnswer | undefined): void {
    const pending = this.pending.get(id);
    if (!pending) return;
    this.pending.delete(id);
    clearTimeout(pending.timer);
    pending.resolve(answer);
  }
}
