// Nearest-rank percentiles for latency summaries.
export const percentile = (values: ReadonlyArray<number>, p: number): number => {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
};

export const summary = (values: ReadonlyArray<number>) => ({
  p50: round(percentile(values, 50)),
  p99: round(percentile(values, 99)),
});

export const round = (v: number, digits = 3) => Math.round(v * 10 ** digits) / 10 ** digits;
