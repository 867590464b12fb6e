"""Pure translation: a span in, a Trubrics event out. No I/O, no threads, no clock."""
