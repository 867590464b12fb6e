"""Flattened attribute lists (``llm.input_messages.{i}.message.*``) come back in index order,
whatever order the keys arrived in, and only under their own prefix."""

from __future__ import annotations

from trubrics_otel.translate.messages import indexed, indexed_by


def test_lists_come_back_in_index_order_whatever_the_key_order():
    attributes = {
        "out.0.text": "answer", "in.10.role": "user", "in.2.role": "system", "in.10.text": "last",
        "in.2.text": "first", "in.x.text": "not an index", "in.3": "no field", "other": 1,
    }
    assert indexed_by(attributes, ("in.", "out.")) == {
        "in.": [{"role": "system", "text": "first"}, {"role": "user", "text": "last"}],
        "out.": [{"text": "answer"}],
    }
    assert indexed(attributes, "none.") == []
    # the same keys again, under other prefixes: each set of prefixes reads them afresh
    assert indexed_by(attributes, ("out.",)) == {"out.": [{"text": "answer"}]}
    assert indexed(attributes, "in.10.") == [] and indexed(attributes, "in.") == [
        {"role": "system", "text": "first"}, {"role": "user", "text": "last"}]
