"""Pure translation: a span in, a Trubrics event out (no I/O, no threads, no clock)."""
