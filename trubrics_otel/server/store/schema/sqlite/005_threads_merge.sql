-- One table per thread (store/threads.py): the store's summary (``threads``: turns, tokens,
-- cost, first turn) and the analyses' table (``analytics_threads``: model, last turn, cost
-- turns, time to first token, end with latency) held the same threads twice, folded by three
-- statements; the merged table is folded by one. Its rows are built here from the events the
-- fold has taken in (id <= folded_id: the fold adds the rest), as the fold builds them: the
-- first and last turn of each thread by time, then id. The dead ``title`` column (NULL since
-- titles are read from the first turn's prompt) and the ``feedback`` count (read by nothing)
-- are gone.
DROP TABLE IF EXISTS analytics_threads;
DROP TABLE threads;
CREATE TABLE threads (
    thread_id TEXT PRIMARY KEY, user_id TEXT NOT NULL, model TEXT, turns INTEGER NOT NULL,
    start_us INTEGER NOT NULL, first_id INTEGER NOT NULL, last_us INTEGER NOT NULL, last_id INTEGER NOT NULL,
    end_us INTEGER NOT NULL, last_error INTEGER NOT NULL, errors INTEGER NOT NULL,
    input_tokens INTEGER, output_tokens INTEGER, cost_usd REAL NOT NULL, cost_turns INTEGER NOT NULL,
    ttft_s REAL NOT NULL, ttft_turns INTEGER NOT NULL
) WITHOUT ROWID;
-- the thread list, latest turn first
CREATE INDEX threads_last ON threads (last_us, thread_id);
-- the analyses: threads whose first turn is in a range, of a user
CREATE INDEX threads_start ON threads (start_us);
CREATE INDEX threads_user ON threads (user_id, start_us);
INSERT INTO threads (thread_id, user_id, model, turns, start_us, first_id, last_us, last_id, end_us,
                     last_error, errors, input_tokens, output_tokens, cost_usd, cost_turns, ttft_s, ttft_turns)
    SELECT thread_id, MAX(CASE WHEN rf = 1 THEN user_id END), MAX(CASE WHEN rf = 1 THEN model END), COUNT(*),
           MIN(ts_us), MAX(CASE WHEN rf = 1 THEN id END), MAX(ts_us), MAX(CASE WHEN rl = 1 THEN id END),
           MAX(end_us), MAX(CASE WHEN rl = 1 THEN failed END), SUM(failed), SUM(input_tokens),
           SUM(output_tokens), COALESCE(SUM(cost_usd), 0), COUNT(cost_usd), COALESCE(SUM(ttft), 0), COUNT(ttft)
    FROM (SELECT thread_id, id, ts_us, user_id, model, input_tokens, output_tokens, cost_usd,
                 trubrics_seconds(json_extract(properties, '$."time_to_first_token"')) AS ttft,  -- dialect.seconds
                 ts_us + CAST(ROUND(COALESCE(latency, 0) * 1000000) AS BIGINT) AS end_us,
                 CASE WHEN error IS NULL THEN 0 ELSE 1 END AS failed,
                 ROW_NUMBER() OVER (PARTITION BY thread_id ORDER BY ts_us, id) AS rf,
                 ROW_NUMBER() OVER (PARTITION BY thread_id ORDER BY ts_us DESC, id DESC) AS rl
          FROM events
          WHERE kind = 'llm' AND thread_id IS NOT NULL AND id <= (SELECT folded_id FROM fold_state)) AS turns
    GROUP BY thread_id
