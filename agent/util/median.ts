/** The median as InfluxQL and SQLite's report compute it: the middle value, or the mean of the two middle values. */
export function median(values: ArrayLike<number>): number | undefined {
  if (values.length === 0) return undefined;
  const s = Float64Array.from(values).sort();
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}
