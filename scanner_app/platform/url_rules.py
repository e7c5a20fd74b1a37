"""URL rules whose URL builders are compiled on first use.

Werkzeug compiles two Python functions per rule (ast + compile) when the rule is added, to
build its URLs later (url_for). The app has about 135 rules and every station process builds
an app, so that was most of create_app's time once the modules are imported (about 75 of 85
ms, issue 15: a forked part's start), for URLs most processes never build: a worker builds
none, the web server a few dozen. Matching (the regular expressions) is unchanged; a rule's
builder is compiled the first time one of its URLs is built, then kept on the rule.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from werkzeug.routing import Rule


class LazyBuilderRule(Rule):
    """A werkzeug Rule whose `_build` and `_build_unknown` are compiled when first called."""

    def _compile_builder(self, append_unknown: bool = True) -> Callable[..., tuple[str, str]]:
        attribute = "_build_unknown" if append_unknown else "_build"
        compile_builder = super()._compile_builder

        def build_on_first_use(rule: Rule, **values: Any) -> tuple[str, str]:
            # Rule.compile binds what this returns to the rule, as it does the real builder;
            # the first call compiles that, binds it in this one's place, and answers with it.
            builder = compile_builder(append_unknown).__get__(rule, None)
            setattr(rule, attribute, builder)
            return builder(**values)

        return build_on_first_use
