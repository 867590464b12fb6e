"""Fork safety: each resource that a forked child must not share resets itself here.

::

    reset_in_child(self.after_fork)   # once, by the resource's owner

The owners: the exporter (its delivery: spool, connections, replay thread) and the batch
processor (its queue, worker and crash journal). A bound method is held weakly, so a
registration never keeps an object alive; ``os.register_at_fork`` cannot be undone.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable


def reset_in_child(method: Callable[[], object]) -> None:
    """Call the bound ``method`` in every child forked from now on, while its object lives."""
    if hasattr(os, "register_at_fork"):
        ref = weakref.WeakMethod(method)  # type: ignore[arg-type]
        os.register_at_fork(after_in_child=lambda: (m := ref()) and m())
