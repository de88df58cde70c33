"""The enabled routes compiled into one regular expression, for a router that decides for
every request (the Django middleware): plain Python, like the matcher it builds on.

Each route's pattern becomes one alternative of a single anchored expression, tried in the
routes' order, so one match finds the first route whose pattern matches; from there the
matcher's own `decide` runs over the rest of the routes (a route whose sale window is closed
or whose canary leaves the buyer out is passed over, as ever). The decision is the one
`matcher.decide` gives for all the routes; only its trace leaves out the routes before.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from edge import matcher


class RouteIndex:
    def __init__(self, routes: Iterable[matcher.Route], *, default_origin: str = matcher.DEFAULT_ORIGIN):
        self.routes = [route for route in routes if route.enabled]
        self.default_origin = default_origin
        # One group per route: the pattern sources have no groups of their own, so the
        # matching alternative's group is the route's place (lastindex counts from 1).
        source = "|".join(f"({matcher.pattern_regex_source(route.pattern)})" for route in self.routes)
        self.regex = re.compile(source, re.DOTALL) if self.routes else None

    def __len__(self) -> int:
        return len(self.routes)

    def decide(self, uri: str, **kwargs) -> matcher.Decision:
        """As `matcher.decide(routes, uri, default_origin=..., **kwargs)`."""
        if self.regex is not None:
            found = self.regex.match(matcher.decoded_path(uri))
            if found is not None:
                first = found.lastindex - 1
                return matcher.decide(self.routes[first:], uri, default_origin=self.default_origin, **kwargs)
        return matcher.Decision(matcher.DEFAULT_ROUTE, self.default_origin)
