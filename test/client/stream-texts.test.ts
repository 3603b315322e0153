/**
 * The SDK's streaming text: snapshots set it, deltas extend it at their offset, duplicates and overlaps
 * add only what is new, a gap waits for the next snapshot.
 */
import { describe, expect, test } from "bun:test";
import { StreamTexts, type Message } from "../../src/client";

const base = { conversation_id: "c", run_id: "r", stream_state: "streaming" } as Message;
const message = (content: string, stream_state: Message["stream_state"] = "streaming") => ({ ...base, id: "m", content, stream_state }) as Message;
const delta = (offset: number, text: string) => ({ conversationId: "c", messageId: "m", offset, delta: text });

describe("StreamTexts", () => {
  test("a snapshot, then deltas in order, duplicates dropped, an overlap cut to its new part", () => {
    const texts = new StreamTexts();
    expect(texts.snapshot(message("Hel"))).toMatchObject({ text: "Hel", added: "Hel", state: "streaming", runId: "r" });
    expect(texts.delta(delta(0, "Hel"))).toBeUndefined();
    expect(texts.delta(delta(3, "lo"))).toMatchObject({ text: "Hello", added: "lo" });
    expect(texts.delta(delta(3, "lo"))).toBeUndefined();
    expect(texts.delta(delta(4, "o, world"))).toMatchObject({ text: "Hello, world", added: ", world" });
    expect(texts.duplicates).toBe(2);
  });

  test("a gap is skipped until a snapshot; a shorter snapshot of the same text does not shorten it", () => {
    const texts = new StreamTexts();
    expect(texts.delta(delta(5, "late"))).toBeUndefined();
    expect(texts.gaps).toBe(1);
    texts.snapshot(message("abcdefgh"));
    expect(texts.snapshot(message("abcd"))?.text).toBe("abcdefgh");
    expect(texts.snapshot(message("final", "complete"))).toMatchObject({ text: "final", state: "complete" });
    expect(texts.text("m")).toBe("final");
  });

  test("ordinary messages are not streams; a stream heard from its first delta needs no snapshot", () => {
    const texts = new StreamTexts();
    expect(texts.snapshot({ ...message("x"), stream_state: null })).toBeUndefined();
    expect(texts.delta(delta(0, "from the start"))?.text).toBe("from the start");
  });
});
