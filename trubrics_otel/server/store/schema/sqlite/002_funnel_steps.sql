-- The funnels' look-up table (analytics/funnels.py): every event under each name a funnel step
-- matches (an LLM event under its generation and its prompt name), keyed so that one user's
-- occurrences of one name are adjacent, in time order, with the event's model. Kept on insert (analytics/schema.py);
-- filled here from the events already stored.
CREATE TABLE IF NOT EXISTS analytics_steps (
    event TEXT NOT NULL, user_id TEXT NOT NULL, ts_us INTEGER NOT NULL, id INTEGER NOT NULL, model TEXT,
    PRIMARY KEY (event, user_id, ts_us, id)
) WITHOUT ROWID;
INSERT INTO analytics_steps (event, user_id, ts_us, id, model)
    SELECT event, user_id, ts_us, id, model FROM events
    UNION ALL
    SELECT prompt_event_name, user_id, ts_us, id, model FROM events WHERE kind = 'llm' AND prompt_event_name <> event
    ORDER BY 1, 2, 3, 4;
