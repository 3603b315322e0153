/**
 * The statement batcher on a scripted database: what goes alone and what goes together, in which order,
 * what the submitters hear and when, and what a failing batch does. The same batcher against the real
 * databases: test/domain/coalesced-sends.test.ts.
 */
import { describe, expect, test } from "bun:test";
import type { Statement } from "../../src/db/client";
import { laneOf, StatementBatcher, type BatchedStatement, type Combiner } from "../../src/db/statement-batcher";

/** A database whose answers the test releases: records every call, answers each statement with its text. */
function scriptedDatabase() {
  const calls: { kind: "query" | "batch"; statements: Statement[]; release: (error?: unknown) => void }[] = [];
  const answer = (s: Statement) => [{ text: s.text }];
  const database = {
    query: <T>(text: string, params: unknown[]) =>
      new Promise<T[]>((resolve, reject) => {
        calls.push({ kind: "query", statements: [{ text, params }], release: (error) => (error ? reject(error) : resolve(answer({ text, params }) as T[])) });
      }),
    batch: <T>(statements: readonly Statement[]) =>
      new Promise<T[][]>((resolve, reject) => {
        calls.push({ kind: "batch", statements: [...statements], release: (error) => (error ? reject(error) : resolve(statements.map(answer) as T[][])) });
      }),
  };
  return { database, calls };
}

const until = async (check: () => boolean) => {
  for (let i = 0; i < 1000 && !check(); i++) await Bun.sleep(0);
  if (!check()) throw new Error("condition not reached");
};

const range3 = () => [0, 1, 2];
const statement = (text: string, key = "k", extra: Partial<BatchedStatement<unknown>> = {}): BatchedStatement<unknown> => ({ text, params: [], key, ...extra });

describe("StatementBatcher", () => {
  test("a lone statement goes at once, alone, without a transaction", async () => {
    const { database, calls } = scriptedDatabase();
    const batcher = new StatementBatcher(database, { lanes: 1, maxBatch: 100 });
    const answer = batcher.submit(statement("a"));
    // Submitted synchronously: the statement is with the database before anything awaits.
    expect(calls.map((c) => c.kind)).toEqual(["query"]);
    calls[0].release();
    expect(await answer).toEqual([{ text: "a" }]);
  });

  test("statements arriving while one is written go together next, grouped by key in submission order", async () => {
    const { database, calls } = scriptedDatabase();
    const batcher = new StatementBatcher(database, { lanes: 1, maxBatch: 100 });
    const first = batcher.submit(statement("first", "m"));
    const rest = [
      batcher.submit(statement("z1", "z")),
      batcher.submit(statement("a1", "a")),
      batcher.submit(statement("z2", "z")),
      batcher.submit(statement("a2", "a")),
    ];
    expect(calls).toHaveLength(1);
    calls[0].release();
    await first;
    await until(() => calls.length === 2);
    expect(calls[1].kind).toBe("batch");
    expect(calls[1].statements.map((s) => s.text)).toEqual(["a1", "a2", "z1", "z2"]);
    calls[1].release();
    expect((await Promise.all(rest)).map((rows) => (rows[0] as { text: string }).text)).toEqual(["z1", "a1", "z2", "a2"]);
  });

  test("commit hooks run in the batch's order, all before any submitter resumes", async () => {
    const { database, calls } = scriptedDatabase();
    const batcher = new StatementBatcher(database, { lanes: 1, maxBatch: 100 });
    const events: string[] = [];
    const submit = (text: string) =>
      batcher.submit(statement(text, "k", { committed: () => events.push(`committed ${text}`) })).then(() => events.push(`resumed ${text}`));
    const first = submit("1");
    const others = [submit("2"), submit("3")];
    calls[0].release();
    await first;
    await until(() => calls.length === 2);
    calls[1].release();
    await Promise.all(others);
    expect(events).toEqual(["committed 1", "resumed 1", "committed 2", "committed 3", "resumed 2", "resumed 3"]);
  });

  test("a batch that fails is written again one statement at a time, in order: only the failing one is refused", async () => {
    const { database, calls } = scriptedDatabase();
    const batcher = new StatementBatcher(database, { lanes: 1, maxBatch: 100 });
    const first = batcher.submit(statement("0"));
    const answers = ["1", "2", "3"].map((text) => batcher.submit(statement(text)).then(() => "ok", (e: Error) => e.message));
    calls[0].release();
    await first;
    await until(() => calls.length === 2);
    calls[1].release(Object.assign(new Error("deadlock"), { code: "40P01" }));
    for (const [i, text] of ["1", "2", "3"].entries()) {
      // One at a time: the next waits for the one before.
      await until(() => calls.length === 3 + i);
      expect(calls[2 + i]).toMatchObject({ kind: "query", statements: [{ text }] });
      calls[2 + i].release(text === "2" ? new Error("refused 2") : undefined);
    }
    expect(await Promise.all(answers)).toEqual(["ok", "refused 2", "ok"]);
  });

  test("when the database cannot be reached, the whole batch fails at once, without retries", async () => {
    const { database, calls } = scriptedDatabase();
    const batcher = new StatementBatcher(database, { lanes: 1, maxBatch: 100 });
    const first = batcher.submit(statement("0"));
    const answers = ["1", "2"].map((text) => batcher.submit(statement(text)).catch((e: { code: string }) => e.code));
    calls[0].release();
    await first;
    await until(() => calls.length === 2);
    calls[1].release(Object.assign(new Error("gone"), { code: "ECONNREFUSED" }));
    expect(await Promise.all(answers)).toEqual(["ECONNREFUSED", "ECONNREFUSED"]);
    expect(calls).toHaveLength(2);
  });

  test("batches hold at most maxBatch statements; the rest follow in the next", async () => {
    const { database, calls } = scriptedDatabase();
    const batcher = new StatementBatcher(database, { lanes: 1, maxBatch: 3 });
    const all = [batcher.submit(statement("0")), ...["1", "2", "3", "4", "5"].map((t) => batcher.submit(statement(t)))];
    calls[0].release();
    await until(() => calls.length === 2);
    expect(calls[1].statements.map((s) => s.text)).toEqual(["1", "2", "3"]);
    calls[1].release();
    await until(() => calls.length === 3);
    expect(calls[2].statements.map((s) => s.text)).toEqual(["4", "5"]);
    calls[2].release();
    expect(await Promise.all(all)).toHaveLength(6);
  });

  test("a prelude runs first in the batch's transaction, for the statements that name it; its rows are nobody's", async () => {
    const { database, calls } = scriptedDatabase();
    const batcher = new StatementBatcher(database, { lanes: 1, maxBatch: 100 });
    const prelude = (statements: readonly Statement[]) => ({ text: `lock ${statements.map((s) => s.text).join(",")}`, params: [] });
    const first = batcher.submit(statement("0", "k", { prelude }));
    const answers = [batcher.submit(statement("1", "k", { prelude })), batcher.submit(statement("2")), batcher.submit(statement("3", "k", { prelude }))];
    // Alone, a statement needs no prelude.
    expect(calls[0].statements.map((s) => s.text)).toEqual(["0"]);
    calls[0].release();
    await first;
    await until(() => calls.length === 2);
    expect(calls[1].statements.map((s) => s.text)).toEqual(["lock 1,3", "1", "2", "3"]);
    calls[1].release();
    expect((await Promise.all(answers)).map((rows) => (rows[0] as { text: string }).text)).toEqual(["1", "2", "3"]);
  });

  test("keys keep their lane; lanes write at the same time", async () => {
    expect(laneOf("conversation-a", 4)).toBe(laneOf("conversation-a", 4));
    expect(laneOf("anything", 1)).toBe(0);
    const keys = Array.from({ length: 64 }, (_, i) => `key-${i}`);
    expect(new Set(keys.map((k) => laneOf(k, 4))).size).toBe(4);

    const { database, calls } = scriptedDatabase();
    const batcher = new StatementBatcher(database, { lanes: 4, maxBatch: 100 });
    const [a, b] = [keys.find((k) => laneOf(k, 4) === 0)!, keys.find((k) => laneOf(k, 4) === 1)!];
    const answers = [batcher.submit(statement("a", a)), batcher.submit(statement("b", b)), batcher.submit(statement("a again", a))];
    // a and b are written at once (two lanes); the second a waits for the first.
    expect(calls.map((c) => c.statements[0].text)).toEqual(["a", "b"]);
    calls[1].release();
    calls[0].release();
    await until(() => calls.length === 3);
    expect(calls[2].statements[0].text).toBe("a again");
    calls[2].release();
    await Promise.all(answers);
  });

  test("statements of one combiner that follow one another are written as one; each gets its own rows back", async () => {
    const { database, calls } = scriptedDatabase();
    const batcher = new StatementBatcher(database, { lanes: 1, maxBatch: 100 });
    const combiner: Combiner = {
      // An id twice never goes into one combined statement.
      accepts: (combined, next) => !combined.some((s) => s.text === next.text),
      combine: (statements) => ({ text: `many ${statements.map((s) => s.text).join("+")}`, params: [] }),
      split: (rows, statements) => statements.map((s) => (s.text === "c" ? [] : [{ text: `${s.text} from ${(rows[0] as { text: string }).text}` }])),
    };
    const first = batcher.submit(statement("0"));
    const answers = [
      batcher.submit(statement("a", "k", { combiner })),
      batcher.submit(statement("b", "k", { combiner })),
      batcher.submit(statement("other", "k")),
      batcher.submit(statement("c", "k", { combiner })),
      batcher.submit(statement("c", "k", { combiner })),
      batcher.submit(statement("d", "k", { combiner })),
    ];
    calls[0].release();
    await first;
    await until(() => calls.length === 2);
    expect(calls[1].statements.map((s) => s.text)).toEqual(["many a+b", "other", "c", "many c+d"]);
    calls[1].release();
    expect((await Promise.all(answers)).map((rows) => rows.map((r) => (r as { text: string }).text))).toEqual([
      ["a from many a+b"],
      ["b from many a+b"],
      ["other"],
      // Alone (the next one may not join it): written as itself.
      ["c"],
      [],
      ["d from many c+d"],
    ]);
  });

  test("a batch that comes down to one statement is written as that statement, its own transaction", async () => {
    const { database, calls } = scriptedDatabase();
    const batcher = new StatementBatcher(database, { lanes: 1, maxBatch: 100 });
    const combiner: Combiner = {
      accepts: () => true,
      combine: (statements) => ({ text: `many ${statements.length}`, params: [] }),
      split: (_rows, statements) => statements.map(() => []),
    };
    const first = batcher.submit(statement("0"));
    const answers = range3().map(() => batcher.submit(statement("x", "k", { combiner })));
    calls[0].release();
    await first;
    await until(() => calls.length === 2);
    expect(calls[1]).toMatchObject({ kind: "query", statements: [{ text: "many 3" }] });
    calls[1].release();
    await Promise.all(answers);
  });

  test("a commit hook that throws refuses its own submitter only", async () => {
    const { database, calls } = scriptedDatabase();
    const batcher = new StatementBatcher(database, { lanes: 1, maxBatch: 100 });
    const first = batcher.submit(statement("0"));
    const bad = batcher.submit(statement("1", "k", { committed: () => { throw new Error("hook"); } })).catch((e: Error) => e.message);
    const good = batcher.submit(statement("2"));
    calls[0].release();
    await first;
    await until(() => calls.length === 2);
    calls[1].release();
    expect(await bad).toBe("hook");
    expect(await good).toEqual([{ text: "2" }]);
  });
});
