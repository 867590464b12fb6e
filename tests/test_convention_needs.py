"""A row's ``needs`` (the attributes without which it is not asked) never hides a span it
recognises: every recorded span of every library, with a row's needs taken out, is one the
row does not recognise."""

from __future__ import annotations

from span_fixtures import FIXTURES, load

from trubrics_otel.translate.conventions import CONVENTIONS


def recorded_attributes():
    for path in sorted(FIXTURES.glob("*/*.json")):
        for span in load(path.parent.name, path.stem):
            yield dict(span.attributes or {})


def test_a_span_without_any_of_a_rows_needs_is_never_the_rows():
    asked = {convention.name: 0 for convention in CONVENTIONS if convention.needs is not None}
    for attributes in recorded_attributes():
        for convention in CONVENTIONS:
            if convention.needs is None:
                continue
            if convention.recognises(attributes):
                asked[convention.name] += 1
            without = {key: value for key, value in attributes.items() if key not in convention.needs}
            assert not convention.recognises(without), (convention.name, sorted(attributes))
    unreached = [name for name, count in asked.items() if not count]
    assert not unreached, unreached  # the recorded libraries reach every row
