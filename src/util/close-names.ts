/** Names close to a mistyped one, for "did you mean" hints: within a third of its length in edits, or containing it. */
export function closeNames(wanted: string, names: readonly string[], max = 5): string[] {
  const limit = Math.max(1, Math.floor(wanted.length / 3));
  return names
    .map((n) => ({ n, d: n.includes(wanted) || wanted.includes(n) ? 0 : editDistance(wanted, n) }))
    .filter((x) => x.d <= limit)
    .sort((a, b) => a.d - b.d || (a.n < b.n ? -1 : 1))
    .slice(0, max)
    .map((x) => x.n);
}

/** Levenshtein distance, one row at a time. */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length]!;
}
