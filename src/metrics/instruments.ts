/**
 * The instruments code increments, and how prom-client reads them at scrape time.
 *
 * prom-client's own `inc()` and `observe()` hash the label set and allocate on every call (a pre-bound
 * `labels(...)` child too). The paths measured here run once per message, frame or query, so they
 * update plain numbers instead (`Tally`, `Level`, `Timings`), and each prom-client metric copies them in
 * its `collect()`, which runs only when /metrics is scraped. prom-client still owns the registry, the
 * exposition format and the process metrics.
 *
 * Definitions live in ./registry.ts; this file only knows how to build and expose them.
 */
import { Counter, Gauge, Histogram, type Registry } from "prom-client";

type HistogramSnapshot = Awaited<ReturnType<Histogram<string>["get"]>>;
type HistogramValue = HistogramSnapshot["values"][number];

/** A monotonic count. */
export class Tally {
  value = 0;
  inc(by = 1): void {
    this.value += by;
  }
}

/** A value that goes up and down (connections open, items queued). */
export class Level {
  value = 0;
  inc(by = 1): void {
    this.value += by;
  }
  dec(by = 1): void {
    this.value -= by;
  }
  set(value: number): void {
    this.value = value;
  }
}

/** A latency distribution in seconds over fixed buckets (cumulative only when exposed). */
export class Timings {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(readonly buckets: readonly number[]) {
    this.counts = new Float64Array(buckets.length);
  }

  observe(seconds: number): void {
    this.sum += seconds;
    this.count++;
    const { buckets } = this;
    for (let i = 0; i < buckets.length; i++) {
      if (seconds <= buckets[i]!) {
        this.counts[i]!++;
        return;
      }
    }
  }

  /** Observes the time since `startedAt` (a `performance.now()` reading). */
  since(startedAt: number): void {
    this.observe((performance.now() - startedAt) / 1000);
  }
}

interface Definition {
  name: string;
  help: string;
}

type Labels = Record<string, string>;

/** Instruments of one metric keyed by their label values, created once per label combination. */
class Series<T> {
  readonly entries: { labels: Labels; instrument: T }[] = [];
  private readonly byKey = new Map<string, T>();

  constructor(
    readonly labelNames: readonly string[],
    private readonly create: () => T,
  ) {}

  /** Meant to be called once per combination, not per event: keep what it returns. */
  labels(...values: string[]): T {
    const key = values.join("\u0000");
    let instrument = this.byKey.get(key);
    if (!instrument) {
      instrument = this.create();
      this.byKey.set(key, instrument);
      this.entries.push({ labels: Object.fromEntries(this.labelNames.map((name, i) => [name, values[i] ?? ""])), instrument });
    }
    return instrument;
  }
}

/** The factories ./registry.ts defines its metrics with, all registered on one registry. */
export function instrumentsOn(registry: Registry) {
  const registers = [registry];

  function counterSeries(definition: Definition & { labelNames: readonly string[] }): Series<Tally> {
    const series = new Series(definition.labelNames, () => new Tally());
    new Counter({
      ...definition,
      labelNames: [...definition.labelNames],
      registers,
      collect() {
        this.reset();
        for (const { labels, instrument } of series.entries) this.inc(labels, instrument.value);
      },
    });
    return series;
  }

  function gaugeSeries(definition: Definition & { labelNames: readonly string[] }): Series<Level> {
    const series = new Series(definition.labelNames, () => new Level());
    new Gauge({
      ...definition,
      labelNames: [...definition.labelNames],
      registers,
      collect() {
        this.reset();
        for (const { labels, instrument } of series.entries) this.set(labels, instrument.value);
      },
    });
    return series;
  }

  return {
    /** One unlabelled counter. */
    counter(definition: Definition): Tally {
      return counterSeries({ ...definition, labelNames: [] }).labels();
    },

    /** A counter with one label over a fixed list of values: `counter.<value>.inc()`. */
    counterBy<V extends string>(definition: Definition & { label: string; values: readonly V[] }): Record<V, Tally> {
      const series = counterSeries({ ...definition, labelNames: [definition.label] });
      return Object.fromEntries(definition.values.map((value) => [value, series.labels(value)])) as Record<V, Tally>;
    },

    /** A counter whose label values are only known at run time (bounded all the same): cache `labels(...)`. */
    counterSeries,

    /** A gauge whose label values are only known at run time (bounded all the same): cache `labels(...)`. */
    gaugeSeries,

    /** One unlabelled gauge. */
    gauge(definition: Definition): Level {
      return gaugeSeries({ ...definition, labelNames: [] }).labels();
    },

    /** A gauge with one label over a fixed list of values. */
    gaugeBy<V extends string>(definition: Definition & { label: string; values: readonly V[] }): Record<V, Level> {
      const series = gaugeSeries({ ...definition, labelNames: [definition.label] });
      return Object.fromEntries(definition.values.map((value) => [value, series.labels(value)])) as Record<V, Level>;
    },

    /** A gauge read from elsewhere when scraped (a value something else already keeps). */
    gaugeReading(definition: Definition & { labelNames: readonly string[]; read: () => Iterable<[Labels, number]> }): void {
      const { read, ...rest } = definition;
      new Gauge({
        ...rest,
        labelNames: [...definition.labelNames],
        registers,
        collect() {
          this.reset();
          for (const [labels, value] of read()) this.set(labels, value);
        },
      });
    },

    /** A counter read from elsewhere when scraped (e.g. failures an event bus already counts). */
    counterReading(definition: Definition & { labelNames: readonly string[]; read: () => Iterable<[Labels, number]> }): void {
      const { read, ...rest } = definition;
      new Counter({
        ...rest,
        labelNames: [...definition.labelNames],
        registers,
        collect() {
          this.reset();
          for (const [labels, value] of read()) this.inc(labels, value);
        },
      });
    },

    /** Latency histograms in seconds: `labels(...)` once per combination, then `observe()` / `since()`. */
    histogramSeries(definition: Definition & { labelNames: readonly string[]; buckets: readonly number[] }): Series<Timings> {
      const series = new Series(definition.labelNames, () => new Timings(definition.buckets));
      new TimingsHistogram(definition, registers, series);
      return series;
    },

    /** One unlabelled latency histogram. */
    histogram(definition: Definition & { buckets: readonly number[] }): Timings {
      return this.histogramSeries({ ...definition, labelNames: [] }).labels();
    },
  };
}

/** A prom-client histogram whose samples come from Timings instead of its own observe(). */
class TimingsHistogram extends Histogram {
  constructor(
    private readonly definition: Definition & { labelNames: readonly string[]; buckets: readonly number[] },
    registers: Registry[],
    private readonly series: Series<Timings>,
  ) {
    super({ name: definition.name, help: definition.help, labelNames: [...definition.labelNames], buckets: [...definition.buckets], registers });
  }

  /** What the registry formats (prom-client's Histogram reads its own observations here otherwise). */
  async getForPromString(): Promise<HistogramSnapshot> {
    return this.snapshot();
  }

  override async get(): Promise<HistogramSnapshot> {
    return this.snapshot();
  }

  private snapshot(): HistogramSnapshot {
    const { name, help, buckets } = this.definition;
    const values: HistogramValue[] = [];
    for (const { labels, instrument } of this.series.entries) {
      let cumulative = 0;
      for (let i = 0; i < buckets.length; i++) {
        cumulative += instrument.counts[i]!;
        values.push({ metricName: `${name}_bucket`, labels: { ...labels, le: buckets[i]! }, value: cumulative });
      }
      values.push({ metricName: `${name}_bucket`, labels: { ...labels, le: "+Inf" }, value: instrument.count });
      values.push({ metricName: `${name}_sum`, labels, value: instrument.sum });
      values.push({ metricName: `${name}_count`, labels, value: instrument.count });
    }
    // The shape prom-client's own histograms return; the registry formats it.
    return { name, help, type: "histogram", values, aggregator: "sum" } as unknown as HistogramSnapshot;
  }
}
