"""Getting events to Trubrics and never losing them: batching, transport, journal, spool."""
