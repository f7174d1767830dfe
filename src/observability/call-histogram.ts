import { Histogram, type LabelValues } from 'prom-client';

type Exported = Awaited<ReturnType<Histogram['get']>>;
/** A line as the registry reads it: its own labels, the series' apart, and (buckets only) an exemplar, none here. */
type Line = Exported['values'][number] & { sharedLabels: LabelValues<string>; exemplar?: null };

interface Series {
  labels: LabelValues<string>;
  /** Observations per bucket, not added up; the last one counts those above every bound. */
  counts: number[];
  sum: number;
  count: number;
}

/**
 * A prom-client Histogram for the latencies observed on every call (requests served, upstream
 * calls). prom-client's `observe` checks the label object's names and builds a key from it on each
 * observation, a visible part of a proxied call's cost; `record` takes the values in `labelNames`
 * order, keys the series by their join and finds the bucket by index. It is registered and read
 * like any Histogram: the registry reads `getForPromString` (for /metrics) or `get`, which give
 * the shapes prom-client's own give. prom-client's writers (`observe`, `labels`, …) throw.
 */
export class CallHistogram extends Histogram<string> {
  private series = new Map<string, Series>();

  constructor(
    private readonly config: {
      name: string;
      help: string;
      labelNames: readonly string[];
      buckets: readonly number[];
      registers: NonNullable<ConstructorParameters<typeof Histogram>[0]['registers']>;
    },
  ) {
    super({ ...config, buckets: [...config.buckets] });
    // What prom-client's own writers record is never read here: calling one is a mistake, so it says so.
    for (const name of ['observe', 'startTimer', 'labels', 'zero', 'remove'] as const) {
      Object.defineProperty(this, name, {
        value: () => {
          throw new Error(`CallHistogram ${config.name}: use record(), not ${name}()`);
        },
      });
    }
  }

  /** One observation: label values in `labelNames` order (none contains a NUL), and the value. */
  record(values: readonly string[], value: number): void {
    if (!Number.isFinite(value)) return;
    const key = values.join('\u0000');
    let series = this.series.get(key);
    if (series === undefined) {
      const labels: LabelValues<string> = {};
      this.config.labelNames.forEach((name, i) => (labels[name] = values[i]));
      series = { labels, counts: new Array<number>(this.config.buckets.length + 1).fill(0), sum: 0, count: 0 };
      this.series.set(key, series);
    }
    const { buckets } = this.config;
    let bucket = 0;
    while (bucket < buckets.length && value > (buckets[bucket] ?? Infinity)) bucket++;
    series.counts[bucket] = (series.counts[bucket] ?? 0) + 1;
    series.sum += value;
    series.count += 1;
  }

  /** As prom-client's: each line's own labels (`le`) apart from the series' (`sharedLabels`). */
  getForPromString(): Promise<Exported> {
    const { name, help, buckets } = this.config;
    const values: Line[] = [];
    for (const { labels, counts, sum, count } of this.series.values()) {
      let cumulative = 0;
      buckets.forEach((le, i) => {
        cumulative += counts[i] ?? 0;
        values.push({ labels: { le }, sharedLabels: labels, value: cumulative, metricName: `${name}_bucket`, exemplar: null });
      });
      values.push(
        { labels: { le: '+Inf' }, sharedLabels: labels, value: count, metricName: `${name}_bucket`, exemplar: null },
        { labels: {}, sharedLabels: labels, value: sum, metricName: `${name}_sum` },
        { labels: {}, sharedLabels: labels, value: count, metricName: `${name}_count` },
      );
    }
    // prom-client's types give `type` as an enum; at run time, and in the registry, it is the word.
    return Promise.resolve({ name, help, type: 'histogram', values, aggregator: 'sum' } as unknown as Exported);
  }

  /** As prom-client's: the series' labels and the line's own in one object. */
  override async get(): Promise<Exported> {
    const data = await this.getForPromString();
    const values = (data.values as Line[]).map(({ sharedLabels, labels, ...rest }) => ({
      ...rest,
      labels: { ...labels, ...sharedLabels },
    }));
    return { ...data, values };
  }

  override reset(): void {
    this.series = new Map();
  }
}
