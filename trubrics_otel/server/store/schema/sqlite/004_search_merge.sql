-- The full-text index (events_fts, filled by the deferred fold, store/derived.py) takes a fold's
-- thousands of prompts and answers in fewer, larger merges (its settings live in the index's own
-- events_fts_config table: the index's content and every search's answer stay as they were).
-- hashsize: the terms FTS5 gathers in memory before writing a segment (default 1 MB: a fold of
-- 5,000 LLM events wrote several, each merged again); automerge: segments of one level merged
-- together (default 4: each term's entries were rewritten once per level of four).
INSERT INTO events_fts (events_fts, rank) VALUES ('hashsize', 8388608);
INSERT INTO events_fts (events_fts, rank) VALUES ('automerge', 8)
