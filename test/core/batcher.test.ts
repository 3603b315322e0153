import { describe, expect, test } from "bun:test";
import { Batcher } from "../../src/core/batcher";

describe("Batcher", () => {
  test("items of one turn go together; items added while a batch is written wait for the next, in order", async () => {
    const batches: number[][] = [];
    let release = () => {};
    const batcher = new Batcher<number>(async (items) => {
      batches.push(items);
      if (batches.length === 1) await new Promise<void>((resolve) => (release = resolve));
    });
    const first = [batcher.add(1), batcher.add(2)];
    await Bun.sleep(1);
    const later = [batcher.add(3), batcher.add(4), batcher.add(5)];
    await Bun.sleep(1);
    expect(batches).toEqual([[1, 2]]);
    release();
    await Promise.all([...first, ...later]);
    expect(batches).toEqual([[1, 2], [3, 4, 5]]);
  });

  test("a failed write rejects its own items only; settled waits for everything added", async () => {
    let calls = 0;
    const written: number[] = [];
    const batcher = new Batcher<number>(async (items) => {
      if (calls++ === 0) throw new Error("down");
      written.push(...items);
    }, 2);
    const results = await Promise.allSettled([1, 2, 3].map((n) => batcher.add(n)));
    expect(results.map((r) => r.status)).toEqual(["rejected", "rejected", "fulfilled"]);
    void batcher.add(4);
    await batcher.settled();
    expect(written).toEqual([3, 4]);
  });
});
