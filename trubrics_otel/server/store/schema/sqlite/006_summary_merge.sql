-- Fewer summary pages written per fold, the same answers (store/derived.py, analytics/schema.py).
-- user_hours (which users were active in each hour) is read from rollup, whose key starts with
-- the hour and the user, a table each fold writes anyway.
DROP TABLE IF EXISTS user_hours;
-- rollup's index by user: one user's stats read their events through the events' own index by
-- (user, time); this one took a page per user of each batch.
DROP INDEX IF EXISTS rollup_user;
-- analytics_daily's indexes by event name and by model put the day before the user: a fold's
-- rows then land on a few pages at the end of each name's range, not on a page per user. The
-- analytics tables' hook makes them again, so here the old ones are only dropped (a new
-- database has none yet).
DROP INDEX IF EXISTS analytics_daily_event;
DROP INDEX IF EXISTS analytics_daily_model
