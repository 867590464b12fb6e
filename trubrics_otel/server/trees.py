"""A trace's events as a tree, whatever the parent links say: cycles and very deep chains included.

::

    roots = span_tree(nodes)   # nodes: dicts with span_id, parent_span_id; gains "children"

Every node appears exactly once. A node whose parent was not stored is a root. A parent
cycle (A's parent B, B's parent A) is broken at its earliest node, which becomes a root
marked ``"broken_link": "parent cycle"``; a chain deeper than :data:`MAX_DEPTH` continues
as a new root marked ``"broken_link": "deeper than 100 levels"``, so the answer stays
within what JSON parsers (and ours) nest. No recursion anywhere.
"""

from __future__ import annotations

from collections import deque
from typing import Any

MAX_DEPTH = 100


def span_tree(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The roots, in the nodes' order, each node's ``children`` filled (also in their order)."""
    by_span = {n["span_id"]: i for i, n in enumerate(nodes) if n.get("span_id")}
    kids: list[list[int]] = [[] for _ in nodes]
    roots: list[int] = []
    for i, node in enumerate(nodes):
        node["children"] = []
        parent = by_span.get(node.get("parent_span_id")) if node.get("parent_span_id") else None
        if parent is None or parent == i:
            roots.append(i)
        else:
            kids[parent].append(i)
    placed = [False] * len(nodes)
    order: list[int] = []

    def grow(root: int) -> None:
        placed[root] = True
        order.append(root)
        queue = deque([(root, 0)])
        while queue:
            at, depth = queue.popleft()
            for child in kids[at]:
                if placed[child]:
                    continue
                placed[child] = True
                if depth + 1 > MAX_DEPTH:
                    nodes[child]["broken_link"] = f"deeper than {MAX_DEPTH} levels"
                    order.append(child)
                    queue.append((child, 0))
                else:
                    nodes[at]["children"].append(nodes[child])
                    queue.append((child, depth + 1))

    for root in roots:
        grow(root)
    for i in range(len(nodes)):  # left: only nodes on (or below) a parent cycle
        if not placed[i]:
            nodes[i]["broken_link"] = "parent cycle"
            grow(i)
    return [nodes[i] for i in order]
