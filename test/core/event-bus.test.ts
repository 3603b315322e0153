import { describe, expect, test } from "bun:test";
import { EventBus } from "../../src/core/event-bus";

describe("EventBus", () => {
  test("inline listeners run inside emit, in order; deferred ones after it, in emit order", async () => {
    const bus = new EventBus<{ n: number }>("test");
    const seen: string[] = [];
    bus.on("deferred", (e) => void seen.push(`deferred ${e.n}`));
    bus.on("inline", (e) => void seen.push(`inline ${e.n}`), { inline: true });
    bus.emit({ n: 1 });
    bus.emit({ n: 2 });
    expect(seen).toEqual(["inline 1", "inline 2"]);
    await Bun.sleep(5);
    expect(seen).toEqual(["inline 1", "inline 2", "deferred 1", "deferred 2"]);
  });

  test("a listener that throws or rejects is counted under its name and stops nobody", async () => {
    const bus = new EventBus<{ n: number }>("test");
    const seen: number[] = [];
    bus.on("throws inline", () => {
      throw new Error("inline boom");
    }, { inline: true });
    bus.on("throws", () => {
      throw new Error("boom");
    });
    bus.on("rejects", async () => {
      throw new Error("async boom");
    });
    bus.on("works", (e) => void seen.push(e.n), { inline: true });
    expect(() => bus.emit({ n: 1 })).not.toThrow();
    bus.emit({ n: 2 });
    expect(seen).toEqual([1, 2]);
    await Bun.sleep(10);
    expect(bus.failures()).toEqual({ "throws inline": 2, throws: 2, rejects: 2, works: 0 });
    expect(bus.failureCount).toBe(6);
  });

  test("a slow async listener does not hold up emit or the other listeners", async () => {
    const bus = new EventBus<{ n: number }>("test");
    let slowDone = false;
    const fast: number[] = [];
    bus.on("slow", async () => {
      await Bun.sleep(200);
      slowDone = true;
    });
    bus.on("fast", (e) => void fast.push(e.n));
    const started = performance.now();
    bus.emit({ n: 1 });
    expect(performance.now() - started).toBeLessThan(50);
    await Bun.sleep(10);
    expect(fast).toEqual([1]);
    expect(slowDone).toBe(false);
  });

  test("a listener removed stops hearing", async () => {
    const bus = new EventBus<{ n: number }>("test");
    const seen: number[] = [];
    const off = bus.on("l", (e) => void seen.push(e.n), { inline: true });
    bus.emit({ n: 1 });
    off();
    bus.emit({ n: 2 });
    expect(seen).toEqual([1]);
  });

  test("write listeners get all the events of a write with its context, awaited; their failure is the write's", async () => {
    const bus = new EventBus<{ n: number }, string>("test");
    const seen: string[] = [];
    bus.onWrite("outbox", async (events, tx) => {
      await Bun.sleep(5);
      seen.push(`${tx}: ${events.map((e) => e.n).join(",")}`);
    });
    bus.on("deferred", (e) => void seen.push(`deferred ${e.n}`));
    await bus.written([{ n: 1 }, { n: 2 }], "tx1");
    // Nothing is emitted by `written`: the writer emits once it has committed.
    await Bun.sleep(5);
    expect(seen).toEqual(["tx1: 1,2"]);
    await bus.written([], "tx2");
    expect(seen).toEqual(["tx1: 1,2"]);
    const off = bus.onWrite("fails", async () => {
      throw new Error("disk full");
    });
    await expect(bus.written([{ n: 3 }], "tx3")).rejects.toThrow("disk full");
    off();
    await bus.written([{ n: 4 }], "tx4");
    expect(seen).toEqual(["tx1: 1,2", "tx3: 3", "tx4: 4"]);
  });
});
