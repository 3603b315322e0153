/**
 * A strict reader of the Prometheus text exposition format (version 0.0.4), for tests: it throws on
 * anything a Prometheus server would reject (bad names, labels, values, samples of an undeclared or
 * twice-declared family, non-cumulative histogram buckets) and answers sample values by name and labels.
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  types: Map<string, string>;
  samples: Sample[];
  /** The value of the one sample with this name and exactly these labels (undefined when absent). */
  value(name: string, labels?: Record<string, string>): number | undefined;
  /** The sum over samples of this name whose labels include `labels`. */
  sum(name: string, labels?: Record<string, string>): number;
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(["counter", "gauge", "histogram", "summary", "untyped"]);

/** As Prometheus reads values (Go's ParseFloat): NaN and Inf in any case. prom-client writes NaN as `Nan`. */
function parseValue(text: string, line: string): number {
  if (/^[+]?inf(inity)?$/i.test(text)) return Infinity;
  if (/^-inf(inity)?$/i.test(text)) return -Infinity;
  if (/^nan$/i.test(text)) return NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) throw new Error(`bad value ${JSON.stringify(text)} in: ${line}`);
  return Number(text);
}

function parseLabels(text: string, line: string): Record<string, string> {
  const labels: Record<string, string> = {};
  let i = 0;
  while (i < text.length) {
    const eq = text.indexOf("=", i);
    if (eq < 0) throw new Error(`bad labels in: ${line}`);
    const name = text.slice(i, eq).trim();
    if (!LABEL_NAME.test(name) || name in labels) throw new Error(`bad or repeated label name ${JSON.stringify(name)} in: ${line}`);
    if (text[eq + 1] !== '"') throw new Error(`unquoted label value in: ${line}`);
    let value = "";
    let j = eq + 2;
    for (; j < text.length && text[j] !== '"'; j++) {
      if (text[j] === "\\") {
        const next = text[++j];
        if (next === "n") value += "\n";
        else if (next === "\\" || next === '"') value += next;
        else throw new Error(`bad escape in: ${line}`);
      } else value += text[j];
    }
    if (j >= text.length) throw new Error(`unterminated label value in: ${line}`);
    labels[name] = value;
    i = j + 1;
    if (text[i] === ",") i++;
    else if (i < text.length) throw new Error(`expected , between labels in: ${line}`);
  }
  return labels;
}

/** The family a sample belongs to: histograms own their _bucket, _sum and _count series. */
function familyOf(name: string, types: Map<string, string>): string | undefined {
  if (types.has(name)) return name;
  for (const suffix of ["_bucket", "_sum", "_count"]) {
    const base = name.slice(0, -suffix.length);
    if (name.endsWith(suffix) && (types.get(base) === "histogram" || (suffix !== "_bucket" && types.get(base) === "summary"))) return base;
  }
  return undefined;
}

const sameLabels = (a: Record<string, string>, b: Record<string, string>) =>
  Object.keys(a).length === Object.keys(b).length && Object.entries(b).every(([k, v]) => a[k] === v);

export function parseExposition(text: string): Exposition {
  if (!text.endsWith("\n")) throw new Error("exposition does not end with a newline");
  const types = new Map<string, string>();
  const helps = new Set<string>();
  const samples: Sample[] = [];
  const seen = new Set<string>();
  const finished = new Set<string>();
  let current: string | undefined;
  for (const line of text.split("\n")) {
    if (line === "") continue;
    if (line.startsWith("#")) {
      const match = /^# (HELP|TYPE) (\S+)(?: (.*))?$/.exec(line);
      if (!match) continue; // a plain comment
      const [, kind, name, rest = ""] = match;
      if (!METRIC_NAME.test(name!)) throw new Error(`bad metric name in: ${line}`);
      if (kind === "TYPE") {
        if (types.has(name!)) throw new Error(`second TYPE for ${name}`);
        if (!TYPES.has(rest)) throw new Error(`bad type in: ${line}`);
        if (samples.some((s) => familyOf(s.name, new Map([[name!, rest]])) === name)) throw new Error(`TYPE after samples of ${name}`);
        types.set(name!, rest);
      } else {
        if (helps.has(name!)) throw new Error(`second HELP for ${name}`);
        helps.add(name!);
      }
      continue;
    }
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: (-?\d+))?$/.exec(line);
    if (!match) throw new Error(`bad sample line: ${line}`);
    const [, name, labelText = "", valueText] = match;
    const family = familyOf(name!, types);
    if (!family) throw new Error(`sample of an undeclared family: ${line}`);
    if (family !== current) {
      // A family's samples come together, once.
      if (finished.has(family)) throw new Error(`samples of ${family} are not grouped`);
      if (current) finished.add(current);
      current = family;
    }
    const labels = parseLabels(labelText, line);
    const key = `${name}${JSON.stringify(Object.entries(labels).sort())}`;
    if (seen.has(key)) throw new Error(`duplicate sample: ${line}`);
    seen.add(key);
    const value = parseValue(valueText!, line);
    if (types.get(family) === "counter" && !(value >= 0)) throw new Error(`negative or NaN counter: ${line}`);
    samples.push({ name: name!, labels, value });
  }
  checkHistograms(types, samples);
  return {
    types,
    samples,
    value: (name, labels = {}) => samples.find((s) => s.name === name && sameLabels(s.labels, labels))?.value,
    sum: (name, labels = {}) =>
      samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((n, s) => n + s.value, 0),
  };
}

/** Buckets rise with `le`, end with +Inf, and +Inf equals _count. */
function checkHistograms(types: Map<string, string>, samples: Sample[]): void {
  for (const [family, type] of types) {
    if (type !== "histogram") continue;
    const series = new Map<string, Sample[]>();
    for (const sample of samples.filter((s) => s.name === `${family}_bucket`)) {
      const { le, ...rest } = sample.labels;
      if (le === undefined) throw new Error(`${family}_bucket without le`);
      const key = JSON.stringify(Object.entries(rest).sort());
      series.set(key, [...(series.get(key) ?? []), sample]);
    }
    for (const [key, buckets] of series) {
      let previousLe = -Infinity;
      let previous = 0;
      for (const bucket of buckets) {
        const le = parseValue(bucket.labels.le!, bucket.labels.le!);
        if (le <= previousLe || bucket.value < previous) throw new Error(`${family} buckets not cumulative for ${key}`);
        previousLe = le;
        previous = bucket.value;
      }
      if (previousLe !== Infinity) throw new Error(`${family} has no +Inf bucket for ${key}`);
      const labels = Object.fromEntries(JSON.parse(key));
      const count = samples.find((s) => s.name === `${family}_count` && sameLabels(s.labels, labels));
      if (count?.value !== previous) throw new Error(`${family}_count differs from the +Inf bucket for ${key}`);
    }
  }
}
