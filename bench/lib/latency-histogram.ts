/**
 * A latency histogram that costs one array increment per sample, can be sent between processes as a list
 * of non-empty buckets, and merged. Buckets are 10 µs wide up to 100 ms, then 1 ms wide up to 10 s;
 * anything slower lands in the last bucket (the exact maximum is kept apart).
 */

const FINE_STEP_MS = 0.01;
const FINE_LIMIT_MS = 100;
const COARSE_STEP_MS = 1;
const COARSE_LIMIT_MS = 10_000;
const FINE_BUCKETS = Math.round(FINE_LIMIT_MS / FINE_STEP_MS);
const BUCKETS = FINE_BUCKETS + Math.round((COARSE_LIMIT_MS - FINE_LIMIT_MS) / COARSE_STEP_MS) + 1;

/** Sparse form for sending between processes: [bucket index, count] pairs, plus totals. */
export interface HistogramData {
  buckets: [number, number][];
  count: number;
  sumMs: number;
  maxMs: number;
}

export interface LatencySummary {
  count: number;
  meanMs: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
}

function bucketOf(ms: number): number {
  if (ms < 0) return 0;
  if (ms < FINE_LIMIT_MS) return Math.floor(ms / FINE_STEP_MS);
  return Math.min(BUCKETS - 1, FINE_BUCKETS + Math.floor((ms - FINE_LIMIT_MS) / COARSE_STEP_MS));
}

/** The upper edge of a bucket: percentiles are reported conservatively, never below the sample. */
function upperEdgeOf(bucket: number): number {
  if (bucket < FINE_BUCKETS) return (bucket + 1) * FINE_STEP_MS;
  return FINE_LIMIT_MS + (bucket - FINE_BUCKETS + 1) * COARSE_STEP_MS;
}

export class LatencyHistogram {
  private readonly counts = new Uint32Array(BUCKETS);
  count = 0;
  sumMs = 0;
  maxMs = 0;

  record(ms: number): void {
    this.counts[bucketOf(ms)]++;
    this.count++;
    this.sumMs += ms;
    if (ms > this.maxMs) this.maxMs = ms;
  }

  toData(): HistogramData {
    const buckets: [number, number][] = [];
    for (let i = 0; i < BUCKETS; i++) if (this.counts[i] !== 0) buckets.push([i, this.counts[i]]);
    return { buckets, count: this.count, sumMs: this.sumMs, maxMs: this.maxMs };
  }

  merge(data: HistogramData): void {
    for (const [bucket, count] of data.buckets) this.counts[bucket] += count;
    this.count += data.count;
    this.sumMs += data.sumMs;
    this.maxMs = Math.max(this.maxMs, data.maxMs);
  }

  percentile(fraction: number): number {
    if (this.count === 0) return 0;
    const rank = Math.ceil(this.count * fraction);
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i];
      if (seen >= rank) return Math.min(upperEdgeOf(i), this.maxMs);
    }
    return this.maxMs;
  }

  summary(): LatencySummary {
    const round = (ms: number) => Math.round(ms * 100) / 100;
    return {
      count: this.count,
      meanMs: round(this.count ? this.sumMs / this.count : 0),
      p50Ms: round(this.percentile(0.5)),
      p90Ms: round(this.percentile(0.9)),
      p99Ms: round(this.percentile(0.99)),
      maxMs: round(this.maxMs),
    };
  }
}
