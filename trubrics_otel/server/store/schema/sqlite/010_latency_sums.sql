-- latency_hist keeps each bin's sum of latencies beside its count (store/derived.py): a
-- percentile is the mean of the latencies in the bin its rank falls in, exact when they are
-- equal (1.2 s on every call reads 1.2 s, not the bin's centre, 1.22 s). The table is made again
-- and filled from the events the fold has taken in (id <= folded_id; the fold adds the rest), so
-- old rows get their sums too. The sum is NOT NULL without a default: a server of the release
-- before, still running on this file, cannot fold into it (five values for six columns): its
-- fold fails, its events stay pending, and a fold of this release takes them in.
CREATE TABLE latency_hist_sums (
    hour_us INTEGER NOT NULL, model TEXT NOT NULL, event TEXT NOT NULL, bin INTEGER NOT NULL,
    n INTEGER NOT NULL, total REAL NOT NULL, PRIMARY KEY (hour_us, model, event, bin)
) WITHOUT ROWID;
INSERT INTO latency_hist_sums
    SELECT ts_us - ts_us % 3600000000, COALESCE(model, ''), event,
           CASE WHEN latency > 0 THEN CAST(round(ln(latency) * 20) AS INTEGER) ELSE -100000 END,
           COUNT(*), SUM(latency)
    FROM events WHERE kind = 'llm' AND latency IS NOT NULL AND id <= (SELECT folded_id FROM fold_state)
    GROUP BY 1, 2, 3, 4;
DROP TABLE latency_hist;
ALTER TABLE latency_hist_sums RENAME TO latency_hist
