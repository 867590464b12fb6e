"""Product analytics over the local store, one module per question, engine-neutral SQL.

::

    from trubrics_otel.server.analytics import api
    api.answer(store, "retention", {"period": "week", "since": "90d"})
    with store.connection() as db:                  # a store connection is a Reader
        retention.retention(db, AnalyticsQuery(...), "week")

``activity`` (active, new, returning users; stickiness), ``retention`` (cohorts), ``funnels``,
``feedback`` (what counts: ``feedback_rows``), ``conversations``, ``topics``; ``schema`` keeps
the tables they read. What differs between SQLite and PostgreSQL is asked of ``db.dialect``
(:mod:`trubrics_otel.server.store.dialect`, shared with the read API's queries).
"""
