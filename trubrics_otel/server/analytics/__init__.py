"""Product analytics over the local store, one module per question, engine-neutral SQL.

::

    from trubrics_otel.server.analytics import api
    api.answer(store, "retention", {"period": "week", "since": "90d"})
    # or, given any Reader (dialect.py): retention.retention(db, AnalyticsQuery(...), "week")

``activity`` (active, new, returning users; stickiness), ``retention`` (cohorts), ``funnels``,
``feedback`` (what counts: ``feedback_rows``), ``conversations``, ``topics``; ``schema`` keeps
the tables they read; ``dialect`` holds what differs between SQLite and PostgreSQL.
"""
