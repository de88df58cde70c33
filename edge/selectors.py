"""Reads of the routing state: the route table every router is compiled from."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

from django.conf import settings
from django.utils import timezone

from edge import matcher
from edge.models import HOT_PATH_ORIGIN, LEGACY_API_ORIGIN, MINISITE_ORIGIN, Origin, Route
from edge.route_index import RouteIndex
from edge.route_version import routes_version
from orders.selectors import hot_path_product_ids, sale_ended_product_ids
from shop.models import Product

logger = logging.getLogger(__name__)


def default_origin_name() -> str:
    origin = Origin.objects.filter(is_default=True).only("name").first()
    return origin.name if origin else matcher.DEFAULT_ORIGIN


def enabled_routes() -> list[matcher.Route]:
    """The enabled routes in order, as the matcher takes them (one query)."""
    rows = Route.objects.filter(enabled=True).select_related("origin").order_by("position", "pk")
    return [r.to_spec() for r in rows]


_compiled: tuple[tuple[str, int], RouteIndex] | None = None
_compiling = threading.Lock()


def routes_compiled() -> RouteIndex:
    """The enabled routes and the default origin, compiled once per routes' version (one small
    cache read per call; two queries and a compilation when the routes changed). Without a
    readable version (the cache is away) they are read and compiled for this call alone."""
    global _compiled
    try:
        version = routes_version()
    except Exception:
        logger.warning("no routes' version: the routes are read for this request", exc_info=True)
        return RouteIndex(enabled_routes(), default_origin=default_origin_name())
    compiled = _compiled
    if compiled is not None and compiled[0] == version:
        return compiled[1]
    with _compiling:
        if _compiled is not None and _compiled[0] == version:
            return _compiled[1]
        index = RouteIndex(enabled_routes(), default_origin=default_origin_name())
        _compiled = (version, index)
        return index


def routes_forget() -> None:
    """Drops this process's compiled routes (tests)."""
    global _compiled
    _compiled = None


def route_table(routes: Iterable[Route] | None = None, origins: Iterable[Origin] | None = None) -> dict:
    """The compiled route table: origins by name and the enabled routes in order.

    `routes` may hold unsaved instances, which is how a change is previewed before it is made.
    """
    if routes is None:
        routes = Route.objects.select_related("origin").all()
    if origins is None:
        origins = Origin.objects.all()
    origins = list(origins)
    default = next((o.name for o in origins if o.is_default), matcher.DEFAULT_ORIGIN)
    ordered = sorted((r for r in routes if r.enabled), key=lambda r: (r.position, r.pk or 0))
    return {
        "default_origin": default,
        "canary_cookie": matcher.CANARY_COOKIE,
        "canary_header": matcher.CANARY_HEADER,
        # Baked into the Lambda@Edge package (it has no environment) and the nginx config.
        "canary_secret": settings.EDGE_CANARY_SECRET,
        # The share of new traces the edge marks Sampled=1 (the origins trace those).
        "trace_sample_rate": settings.TRACING_SAMPLE_RATE if settings.TRACING_ENABLED else 0.0,
        "origins": {o.name: o.to_dict() for o in origins},
        "routes": [r.to_spec().to_dict() for r in ordered],
    }


def _route_order(r: Route) -> tuple:
    """Routes in the order CloudFront tries their behaviours; one not saved yet goes last."""
    return (r.position, r.pk if r.pk is not None else float("inf"))


def route_warnings(route: Route, routes: Iterable[Route] | None = None) -> list[str]:
    """Why a route might never serve a request: an earlier, unconditional route covers it."""
    if routes is None:
        routes = Route.objects.select_related("origin").all()
    warnings = []
    for other in sorted(routes, key=_route_order):
        if _route_order(other) >= _route_order(route) or other.pk == route.pk:
            continue
        if not other.enabled or _conditional(other):
            continue
        if matcher.pattern_covers(other.pattern, route.pattern):
            warnings.append(
                f"Route {route.name} can never match: the earlier route {other.name} ({other.pattern}) "
                f"covers every path of {route.pattern}."
            )
    if route.enabled and not _conditional(route):
        for other in sorted(routes, key=_route_order):
            if (
                _route_order(other) > _route_order(route)
                and other.pk != route.pk
                and matcher.pattern_covers(route.pattern, other.pattern)
            ):
                warnings.append(
                    f"Route {other.name} ({other.pattern}) can never match: route {route.name} comes first "
                    f"and covers every path of it."
                )
    return (
        warnings
        + _window_ended(route)
        + _hot_path_without_sale(route)
        + _minisite_takes_orders(route, routes)
        + _bucket_behind_another_origin(route, routes)
        + _legacy_api_private(route)
    )


def _bucket_behind_another_origin(route: Route, routes: Iterable[Route]) -> list[str]:
    """CloudFront takes a request to the first behaviour whose pattern matches it. A route to an
    S3 bucket (the mini-site) behind an earlier conditional route (a canary, a window) of
    another origin whose pattern covers its own is reached there by the router switching the
    origin, and a switched origin goes without the bucket's origin access control: the private
    bucket answers 403 to everyone sent to it. Said from either route's side, as each changes."""
    if not route.enabled:
        return []
    ordered = sorted([*(r for r in routes if r.pk != route.pk or route.pk is None), route], key=_route_order)
    ordered = [r for r in ordered if r.enabled]
    warnings = []
    for index, bucket in enumerate(ordered):
        if bucket.origin is None or bucket.origin.kind != Origin.Kind.S3:
            continue
        ahead = next((r for r in ordered[:index] if matcher.pattern_covers(r.pattern, bucket.pattern)), None)
        if (
            ahead is None
            or not _conditional(ahead)
            or (ahead.origin is not None and ahead.origin.kind == Origin.Kind.S3)
        ):
            continue
        if route not in (bucket, ahead):
            continue
        target = f"origin {ahead.origin.name}" if ahead.origin is not None else "a redirect"
        warnings.append(
            f"Route {bucket.name} sends {bucket.pattern} to the bucket {bucket.origin.name} behind route "
            f"{ahead.name}'s behaviour ({ahead.pattern}, {target}): on CloudFront the router reaches the bucket "
            "from there without its origin access control, and it answers 403. Give the bucket's route a "
            "pattern no earlier route covers, or put it first."
        )
    return warnings


def _conditional(route: Route) -> bool:
    """Whether a route may pass a request on (its window, its canary) to a later one."""
    return bool(route.window_start or route.window_end or route.canary_percent is not None)


def _legacy_api_private(route: Route) -> list[str]:
    """The stack's legacy API is private to its VPC (the storefront and the workers call it
    there): a CloudFront behaviour to it gets 403. Such a route serves the local edge only."""
    if not route.enabled or route.origin is None or route.origin.name != LEGACY_API_ORIGIN:
        return []
    return [
        f"Route {route.name} sends {route.pattern} to the legacy API: in the CloudFormation stack that API is "
        "private to its VPC, and CloudFront gets 403 from it. The route serves the local edge (nginx, run.py) only."
    ]


def _window_ended(route: Route) -> list[str]:
    """An enabled route whose window has ended applies to no request: switched on (by hand, or
    by `sale open --route` and the sale's form, which keep the window it had), it sends nobody
    to its origin, and a sale's buyers go on to the storefront."""
    if not route.enabled or route.window_end is None or route.window_end > timezone.now():
        return []
    return [
        f"Route {route.name} is on, but its window ended at {route.window_end.isoformat()}: it applies to no "
        "request. Clear or move its window (Edge routing > Routes in the admin)."
    ]


def _minisite_takes_orders(route: Route, routes: Iterable[Route]) -> list[str]:
    """The mini-site's sale page posts its orders, and reads its stock, at its own origin's
    /orders and /stock unless EDGE_HOTPATH_API_URL names the hot path's API: a route that also
    sends those to the mini-site (`/shop/rods/muskie-casting-rod/*`) loses every order there,
    as a bucket takes no POST."""
    if not route.enabled or route.origin is None or route.origin.name != MINISITE_ORIGIN:
        return []
    if settings.EDGE_HOTPATH_API_URL:
        return []
    ordered = sorted([*(r for r in routes if r.pk != route.pk), route], key=_route_order)
    for category, slug in (
        Product.objects.on_sale().order_by("category__slug", "slug").values_list("category__slug", "slug")
    ):
        taken = [
            path
            for path in (f"/shop/{category}/{slug}/orders", f"/shop/{category}/{slug}/stock")
            if matcher.first_pattern(ordered, path) == route.name
        ]
        if taken:
            return [
                f"Route {route.name} sends {' and '.join(taken)} to the mini-site, where the sale's page posts "
                "its orders and reads its stock: a bucket answers neither. Send /orders and /stock to the hot "
                "path with a route before it (or match the page alone), or set EDGE_HOTPATH_API_URL to the "
                "hot path's API."
            ]
    return []


def _hot_path_without_sale(route: Route) -> list[str]:
    """An enabled route that sends product pages (or their orders API or stock figures) to the
    hot path when their product has no open sale: shoppers would get a 404 there (or, once its
    sale has ended, the sale's page saying so) instead of the storefront's page, and buy-now
    orders a 404 `not_hot` instead of the storefront's order."""
    if not route.enabled or route.origin is None or route.origin.name != HOT_PATH_ORIGIN:
        return []
    serving = hot_path_product_ids()
    products = Product.objects.on_sale().exclude(pk__in=serving).order_by("category__slug", "slug")
    missing = []
    for pk, category, slug, title in products.values_list("pk", "category__slug", "slug", "title").iterator():
        if matcher.pattern_matches_product(route.pattern, category, slug):
            missing.append((pk, slug, f"{title} (/shop/{category}/{slug}/)"))
    if not missing:
        return []
    named = ", ".join(text for _, _, text in missing[:3])
    if len(missing) > 3:
        named += f" and {len(missing) - 3} more"
    verb = "has" if len(missing) == 1 else "have"
    ended = sale_ended_product_ids()
    if all(pk in ended for pk, _, _ in missing):
        shown = "the hot path shows their pages as their sale's, ended"
    elif any(pk in ended for pk, _, _ in missing):
        shown = "the hot path answers their pages with 404 (where a sale has ended, its page, ended)"
    else:
        shown = "the hot path answers their pages with 404"
    return [
        f"Route {route.name} sends product pages or their orders to the hot path, but {named} {verb} no open sale: "
        f"{shown}. Open the sale first (`manage.py sale open "
        f"{missing[0][1]} --units N --route`, or Sale allocations in the admin), or switch this "
        f"route off."
    ]
