"""URL builders compiled on first use (platform/url_rules.py): every URL of the station's app
is built exactly as werkzeug's own Rule builds it, with and without extra query values (by
both builders), and
no builder is compiled until a URL of its rule is built."""

from __future__ import annotations

from flask import url_for
from werkzeug.routing import Map, Rule

from scanner_app.platform.url_rules import LazyBuilderRule


def sample_values(rule: Rule) -> dict[str, object]:
    """A value for each variable part of the rule that its converter accepts (the rule's
    defaults fill in the rest)."""
    values: dict[str, object] = dict(rule.defaults or {})
    for name, converter in rule._converters.items():
        kind = type(converter).__name__.lower()
        values[name] = 7 if "int" in kind or "id" in kind else "a-b"
    return values


def test_every_url_is_built_as_werkzeug_builds_it(sqlite_app):
    lazy_rules = list(sqlite_app.url_map.iter_rules())
    assert len(lazy_rules) > 100
    # All but Flask's own static rule, which Flask adds before the factory can say otherwise.
    assert {rule.endpoint for rule in lazy_rules if type(rule) is not LazyBuilderRule} \
        == {"static"}
    plain_map = Map([Rule(rule.rule, **rule.get_empty_kwargs()) for rule in lazy_rules],
                    converters=sqlite_app.url_map.converters)
    plain_rules = list(plain_map.iter_rules())
    built = 0
    for lazy, plain in zip(lazy_rules, plain_rules, strict=True):
        assert (lazy.rule, lazy.endpoint) == (plain.rule, plain.endpoint)
        values = sample_values(lazy)
        for extra in ({}, {"page": 2, "q": "a b"}):
            for append_unknown in (False, True):
                expected = plain.build({**values, **extra}, append_unknown)
                assert expected is not None, lazy.rule
                assert lazy.build({**values, **extra}, append_unknown) == expected, lazy.rule
                built += 1
    assert built == 4 * len(lazy_rules)


def test_a_builder_is_compiled_when_first_used_then_kept(sqlite_app):
    rule = next(r for r in sqlite_app.url_map.iter_rules() if r.endpoint == "health.healthz")
    assert rule._build_unknown.__name__ == "build_on_first_use"
    with sqlite_app.test_request_context():
        assert url_for("health.healthz", check="all") == "/healthz?check=all"
        compiled = rule._build_unknown
        assert compiled.__name__ != "build_on_first_use"
        assert url_for("health.healthz") == "/healthz"
        assert rule._build_unknown is compiled  # compiled once
    assert rule._build.__name__ == "build_on_first_use"  # the other builder: never used
