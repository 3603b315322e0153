/**
 * Coalesced writes: statements submitted while a write is under way are written together by the next one,
 * in one transaction, so that many of them share one commit. The commit (its WAL flush), not the rows, is
 * what a short write costs PostgreSQL; with one statement per commit a server cannot go past that.
 *
 * - A statement submitted while nothing is under way goes at once, alone, as it would without this: no
 *   timer, no added latency at low load. Batches come from concurrency only.
 * - Each statement has a key (a conversation). Statements of one key are written in the order they were
 *   submitted: a key always goes to the same lane, a lane has one write under way at a time, its batch
 *   keeps submission order per key, and its next batch waits for the previous one to commit. Lanes write
 *   in parallel, on connections of their own; they never touch the same keys.
 * - Within a batch the statements are grouped by key (in key order, submission order kept inside a key),
 *   so that two batches, of this instance or another, lock the keys' rows in the same order.
 * - `committed` runs right after the commit that wrote the statement, in the batch's order, before any
 *   submitter resumes: what is announced after a commit is announced in the order it was written.
 * - Statements that name the same combiner and follow one another in a batch are written as one
 *   statement of many rows (a multi-row insert costs the database far less per row than as many
 *   statements); the combiner hands each statement its own rows back.
 * - A batch that fails is rolled back as a whole; its statements are then written again one by one, in
 *   order, each in its own transaction, so that one statement's failure is its submitter's alone. When
 *   the database cannot be reached, every statement of the batch fails with that at once.
 */
import { isDatabaseUnavailable } from "../core/database-errors";
import { sendBatchRetries, sendBatchStatements, sendBatches } from "../metrics/registry";
import type { Database, Statement } from "./client";

export interface BatchedStatement<R> extends Statement {
  /** Statements with the same key are written in the order they were submitted. */
  key: string;
  /** Runs once the statement is committed, before its submitter resumes (errors reject the submitter). */
  committed?: (rows: R[]) => void;
  /**
   * What must run first in a batch's transaction for the statements of the batch that name this same
   * function (e.g. locks taken in a fixed order), if anything. A statement written alone needs none.
   */
  prelude?: Prelude;
  /** Statements of this kind that follow one another in a batch may be written as one. */
  combiner?: Combiner;
}

export type Prelude = (statements: readonly Statement[]) => Statement | undefined;

/** Writes several statements of one kind as one statement, with the same effect as running them in order. */
export interface Combiner {
  /** Whether `next` may join `combined` (which holds at least one statement), in this order. */
  accepts(combined: readonly Statement[], next: Statement): boolean;
  combine(statements: readonly Statement[]): Statement;
  /** The rows each of `statements` would have answered, from the combined statement's rows. */
  split(rows: unknown[], statements: readonly Statement[]): unknown[][];
}

export interface StatementBatcherOptions {
  /** Batches written at once, each with keys of its own (1 for a database with one connection). */
  lanes: number;
  /** Most statements in one batch; more wait for the next one. */
  maxBatch: number;
}

interface Pending {
  statement: BatchedStatement<unknown>;
  resolve: (rows: unknown[]) => void;
  reject: (error: unknown) => void;
}

interface Lane {
  queue: Pending[];
  writing: boolean;
}

export class StatementBatcher {
  private readonly lanes: Lane[];

  constructor(
    private readonly database: Pick<Database, "query" | "batch">,
    private readonly options: StatementBatcherOptions,
  ) {
    this.lanes = Array.from({ length: Math.max(1, options.lanes) }, () => ({ queue: [], writing: false }));
  }

  /** Statements submitted and not yet handed to the database. */
  get waiting(): number {
    let total = 0;
    for (const lane of this.lanes) total += lane.queue.length;
    return total;
  }

  /**
   * Queues a statement (synchronously: statements submitted in order are written in order) and answers
   * its rows once committed.
   */
  submit<R>(statement: BatchedStatement<R>): Promise<R[]> {
    return new Promise<R[]>((resolve, reject) => {
      const lane = this.lanes[laneOf(statement.key, this.lanes.length)];
      lane.queue.push({ statement: statement as BatchedStatement<unknown>, resolve: resolve as (rows: unknown[]) => void, reject });
      if (!lane.writing) void this.write(lane);
    });
  }

  /**
   * Writes the lane's queue, batch after batch, until it is empty. After a write that leaves the queue
   * empty, the lane waits one turn of the event loop before it counts as idle: the embedded database
   * answers without the event loop turning (its statements run on this thread), so requests that
   * arrived meanwhile are only read now, and they are to go together, not one by one. A send that finds
   * the lane idle still goes at once.
   */
  private async write(lane: Lane): Promise<void> {
    lane.writing = true;
    try {
      for (;;) {
        if (lane.queue.length === 0) {
          await new Promise<void>((resolve) => setImmediate(resolve));
          if (lane.queue.length === 0) return;
        }
        const batch = lane.queue.splice(0, this.options.maxBatch);
        sendBatches.inc();
        sendBatchStatements.inc(batch.length);
        if (batch.length === 1) await this.writeAlone(batch[0]);
        else await this.writeTogether(groupedByKey(batch));
      }
    } finally {
      lane.writing = false;
    }
  }

  private async writeAlone(pending: Pending): Promise<void> {
    let rows: unknown[];
    try {
      rows = await this.database.query(pending.statement.text, pending.statement.params);
    } catch (error) {
      pending.reject(error);
      return;
    }
    settle(pending, rows);
  }

  private async writeTogether(batch: Pending[]): Promise<void> {
    let preludes: Statement[] = [];
    let units: Unit[] = [];
    let results: unknown[][];
    try {
      preludes = preludesOf(batch);
      units = unitsOf(batch);
      const written = [...preludes, ...units.map((unit) => unit.statement)];
      // One statement is its own transaction; several share one.
      results = written.length === 1 ? [await this.database.query(written[0].text, written[0].params)] : await this.database.batch(written);
    } catch (error) {
      if (isDatabaseUnavailable(error)) {
        for (const pending of batch) pending.reject(error);
        return;
      }
      // Nothing of the batch was committed: each statement again on its own, in the same order.
      sendBatchRetries.inc();
      for (const pending of batch) await this.writeAlone(pending);
      return;
    }
    let rows: unknown[][] = [];
    try {
      units.forEach((unit, i) => {
        const answer = results[preludes.length + i];
        rows = rows.concat(unit.combiner ? unit.combiner.split(answer, unit.members) : [answer]);
      });
    } catch (error) {
      // Committed, but whose rows are whose is not known: nobody may be told "stored" by mistake.
      for (const pending of batch) pending.reject(error);
      return;
    }
    batch.forEach((pending, i) => settle(pending, rows[i]));
  }
}

/** What a batch writes: each statement alone, or combined with the ones that follow it. */
interface Unit {
  statement: Statement;
  members: Statement[];
  combiner?: Combiner;
}

function unitsOf(batch: Pending[]): Unit[] {
  const units: Unit[] = [];
  let open: { combiner: Combiner; members: Statement[] } | undefined;
  const close = () => {
    if (!open) return;
    const { combiner, members } = open;
    units.push(members.length === 1 ? { statement: members[0], members } : { statement: combiner.combine(members), members, combiner });
    open = undefined;
  };
  for (const { statement } of batch) {
    const { combiner } = statement;
    if (open && (combiner !== open.combiner || !open.combiner.accepts(open.members, statement))) close();
    if (!combiner) {
      units.push({ statement, members: [statement] });
      continue;
    }
    if (open) open.members.push(statement);
    else open = { combiner, members: [statement] };
  }
  close();
  return units;
}

/** The statements the batch's preludes ask to run first. */
function preludesOf(batch: Pending[]): Statement[] {
  const byPrelude = new Map<Prelude, Statement[]>();
  for (const { statement } of batch) {
    if (!statement.prelude) continue;
    let statements = byPrelude.get(statement.prelude);
    if (!statements) byPrelude.set(statement.prelude, (statements = []));
    statements.push(statement);
  }
  const first: Statement[] = [];
  for (const [prelude, statements] of byPrelude) {
    const statement = prelude(statements);
    if (statement) first.push(statement);
  }
  return first;
}

/** Tells one submitter: its commit hook first, then its answer. */
function settle(pending: Pending, rows: unknown[]): void {
  try {
    pending.statement.committed?.(rows);
  } catch (error) {
    pending.reject(error);
    return;
  }
  pending.resolve(rows);
}

/** Statements grouped by key in key order, each key's in submission order (a stable sort). */
function groupedByKey(batch: Pending[]): Pending[] {
  return batch
    .map((pending, index) => ({ pending, index }))
    .sort((a, b) => (a.pending.statement.key < b.pending.statement.key ? -1 : a.pending.statement.key > b.pending.statement.key ? 1 : a.index - b.index))
    .map(({ pending }) => pending);
}

/** A key's lane: the same key, the same lane (FNV-1a over the key's characters). */
export function laneOf(key: string, lanes: number): number {
  if (lanes <= 1) return 0;
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) hash = Math.imul(hash ^ key.charCodeAt(i), 0x01000193);
  return (hash >>> 0) % lanes;
}
