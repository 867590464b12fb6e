"""Getting events to Trubrics and never losing them (and the data they need on the way)."""
