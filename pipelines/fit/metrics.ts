// Classifier metrics. auc: the area under the ROC curve as the Mann-Whitney U statistic, U / (n_pos n_neg) with
// U = (sum of the positives' ranks) - n_pos (n_pos + 1) / 2 and tied scores given their average rank (Hanley &
// McNeil 1982, "The meaning and use of the area under a ROC curve"); equal to P(score_pos > score_neg) + P(tie) / 2.

/**
 * AUC of `scores` for `labels` (1 positive, 0 negative). NaN when either class is empty. Throws on a non-finite
 * score, a label other than 0 or 1, or arrays of different lengths.
 */
export function auc(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  const n = scores.length;
  if (labels.length !== n) throw new Error(`auc: ${n} scores but ${labels.length} labels`);
  for (let i = 0; i < n; i++) {
    if (!Number.isFinite(scores[i]!)) throw new Error(`auc: score ${scores[i]} at ${i} is not finite`);
    if (labels[i] !== 0 && labels[i] !== 1) throw new Error(`auc: label ${labels[i]} at ${i} is not 0 or 1`);
  }
  const order = Uint32Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[a]! - scores[b]!);
  let positives = 0;
  let positiveRankSum = 0;
  for (let start = 0; start < n; ) {
    let end = start + 1;
    while (end < n && scores[order[end]!] === scores[order[start]!]) end++;
    const averageRank = (start + 1 + end) / 2; // ranks start + 1 .. end
    for (let i = start; i < end; i++) {
      if (labels[order[i]!] === 1) {
        positives += 1;
        positiveRankSum += averageRank;
      }
    }
    start = end;
  }
  const negatives = n - positives;
  if (positives === 0 || negatives === 0) return Number.NaN;
  return (positiveRankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}
