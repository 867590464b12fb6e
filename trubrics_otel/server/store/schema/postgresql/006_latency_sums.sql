-- latency_hist keeps each bin's sum of latencies beside its count (store/derived.py): a
-- percentile is the mean of the latencies in the bin its rank falls in, exact when they are
-- equal (1.2 s on every call reads 1.2 s, not the bin's centre, 1.22 s). Emptied and filled
-- again from the events (each insert folds its own, in its transaction), so old rows get their
-- sums too. The sum is NOT NULL without a default: an insert of the release before, still
-- running on this database, would leave it NULL; it fails instead, whole, and is retried.
DELETE FROM latency_hist;
ALTER TABLE latency_hist ADD COLUMN total DOUBLE PRECISION NOT NULL;
INSERT INTO latency_hist
    SELECT ts_us - ts_us % 3600000000, COALESCE(model, ''), event,
           CASE WHEN latency > 0 THEN CAST(round(ln(latency) * 20) AS INTEGER) ELSE -100000 END,
           COUNT(*), SUM(latency)
    FROM events WHERE kind = 'llm' AND latency IS NOT NULL
    GROUP BY 1, 2, 3, 4;
