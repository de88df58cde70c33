"""Origins, ordered routes and the audit trail of every route change."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, URLValidator
from django.db import models

from edge import matcher
from edge.matcher import has_control_character, is_host
from edge.route_version import RouteQuerySet


def validate_host(value: str) -> None:
    if not is_host(value):
        raise ValidationError(
            f"{value!r} is not a host: give a DNS name or an IPv4 address (letters, digits, - and .).",
            code="invalid",
        )


class Origin(models.Model):
    class Kind(models.TextChoices):
        WEB = "web", "Web server (keeps the viewer's Host)"
        API_GATEWAY = "api-gateway", "API Gateway / Lambda"
        S3 = "s3", "S3 bucket"

    class Protocol(models.TextChoices):
        HTTP = "http", "http"
        HTTPS = "https", "https"

    name = models.SlugField(max_length=64, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.WEB)
    domain = models.CharField(max_length=253, validators=[validate_host])
    protocol = models.CharField(max_length=5, choices=Protocol.choices, default=Protocol.HTTPS)
    port = models.PositiveIntegerField(default=443, validators=[MinValueValidator(1), MaxValueValidator(65535)])
    path = models.CharField(
        max_length=255, blank=True, help_text="Origin path prepended to the URI, e.g. /prod; empty for none."
    )
    is_default = models.BooleanField(default=False, help_text="Serves every request no route takes.")

    class Meta:
        ordering = ["-is_default", "name"]
        constraints = [
            models.UniqueConstraint(fields=["is_default"], condition=models.Q(is_default=True), name="edge_one_default")
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.path and (not self.path.startswith("/") or self.path.endswith("/")):
            raise ValidationError({"path": "An origin path starts with / and does not end with /, e.g. /prod."})

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "domain": self.domain,
            "protocol": self.protocol,
            "port": self.port,
            "path": self.path,
        }


def _url_or_path(value: str) -> None:
    if has_control_character(value):
        # Written into a Location header by every router: a line break would add headers of
        # the route author's choosing to every visitor's response.
        raise ValidationError("A URL holds no control characters (line breaks, tabs).", code="invalid")
    if value.startswith("/") and not value.startswith(("//", "/\\")) and " " not in value:
        return
    try:
        URLValidator(schemes=["http", "https"])(value)
    except ValidationError:
        raise ValidationError(
            f"{value!r} is not a URL: give an absolute http(s) URL or a path starting with /.", code="invalid"
        )


# The merchant's admin, served by the default origin (config.urls_monolith): a route that took it
# elsewhere would lock the merchant out of the very page that switches routes off.
ADMIN_PATH = "/admin/"
# The legacy order API's own path and origin: the shop's services call it there (in one
# process with the storefront, through this same router), so a route covering it may send it
# only to that origin.
LEGACY_API_PATH = "/legacy-api/"
LEGACY_API_ORIGIN = "legacy-api"
# The origin of the stateless hot path: it serves only products whose sale is open.
HOT_PATH_ORIGIN = "hotpath"
# The sale's page as static files (S3): it serves pages, and takes no order.
MINISITE_ORIGIN = "minisite"
# A path of each of its endpoints (legacy_api/urls.py): a pattern covering any of them takes
# calls the shop's services make, such as `*/orders` taking /legacy-api/orders.
LEGACY_API_PATHS = tuple(
    LEGACY_API_PATH + path
    for path in (
        "",
        "ping",
        "orders",
        "orders/lookup",
        "orders/1",
        "holds",
        "holds/sale-1-0123456789ab",
        "stock/muskie-casting-rod",
        "stock/muskie-casting-rod/receipts",
        "stats",
        "stats/reset",
        "schema",
    )
)


class Route(models.Model):
    name = models.SlugField(max_length=64, unique=True)
    pattern = models.CharField(
        max_length=1000,  # longer input is kept to be refused with a clear message, not truncated
        help_text="CloudFront path pattern: * any run of characters (/ included), ? one character.",
    )
    origin = models.ForeignKey(
        Origin,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="routes",
        help_text="Empty for a redirect.",
    )
    position = models.PositiveIntegerField(default=0, help_text="Lower comes first; the first route that applies wins.")
    # Safe default: a new route does nothing until someone switches it on.
    enabled = models.BooleanField(default=False)
    window_start = models.DateTimeField(null=True, blank=True, help_text="Sale window: active from (inclusive).")
    window_end = models.DateTimeField(null=True, blank=True, help_text="Sale window: active until (exclusive).")
    canary_percent = models.IntegerField(
        null=True, blank=True, help_text="Share of buyers (0–100) sent to this route; empty for all."
    )
    redirect_url = models.CharField(max_length=2000, blank=True, help_text="Redirect here instead of to an origin.")
    redirect_status = models.PositiveSmallIntegerField(
        null=True, blank=True, choices=[(s, str(s)) for s in matcher.REDIRECT_STATUSES]
    )
    updated_at = models.DateTimeField(auto_now=True)

    # Bulk updates replace the routes' version too (edge.route_version).
    objects = RouteQuerySet.as_manager()

    class Meta:
        ordering = ["position", "pk"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}

        def add(field_name: str, message: str) -> None:
            errors.setdefault(field_name, []).append(message)

        if self.name == matcher.DEFAULT_ROUTE:
            add("name", "'default' names the default origin; choose another name.")
        if self.name == matcher.NORMALIZE_ROUTE:
            add("name", "'normalize' names the edge's redirect to a path's normal form; choose another name.")
        self.pattern = (self.pattern or "").replace("&amp;", "&")
        for message in matcher.pattern_errors(self.pattern):
            add("pattern", message)
        if self.pattern and matcher.pattern_matches(self.pattern, ADMIN_PATH):
            add(
                "pattern",
                f"The path pattern covers the merchant's admin ({ADMIN_PATH}), where routes are switched off "
                "again: choose one that leaves it to the default origin.",
            )
        if (
            self.pattern
            and any(matcher.pattern_matches(self.pattern, path) for path in LEGACY_API_PATHS)
            and (self.origin is None or self.origin.name != LEGACY_API_ORIGIN)
        ):
            add(
                "pattern",
                f"The path pattern covers the legacy order API ({LEGACY_API_PATH}), which checkout and the "
                f"workers call: only the {LEGACY_API_ORIGIN} origin may take it. Choose one that leaves it alone.",
            )
        if self.window_start and self.window_end and self.window_end <= self.window_start:
            add("window_end", "The sale window must end after it starts.")
        if self.canary_percent is not None and not 0 <= self.canary_percent <= 100:
            add("canary_percent", f"A canary is a percentage from 0 to 100, not {self.canary_percent}.")
        if self.redirect_url:
            try:
                _url_or_path(self.redirect_url)
            except ValidationError as exc:
                add("redirect_url", exc.messages[0])
            if self.origin_id:
                add("origin", "A redirect has no origin: leave the origin empty.")
            if self.redirect_status is None:
                self.redirect_status = 302
        else:
            if self.redirect_status is not None:
                add("redirect_status", "A redirect status needs a redirect URL.")
            if not self.origin_id:
                add("origin", "Choose the origin this route sends requests to, or give a redirect URL.")
        if self._state.adding:
            limit = settings.EDGE_MAX_BEHAVIORS
            if Route.objects.count() >= limit:
                add(
                    "__all__" if "pattern" not in errors else "pattern",
                    f"The distribution already has {limit} behaviours, CloudFront's quota "
                    f"(EDGE_MAX_BEHAVIORS={limit}); remove a route first.",
                )
        if errors:
            raise ValidationError(errors)

    def to_spec(self) -> matcher.Route:
        return matcher.Route(
            name=self.name,
            pattern=self.pattern,
            origin=self.origin.name if self.origin_id else None,
            enabled=self.enabled,
            window_start=int(self.window_start.timestamp()) if self.window_start else None,
            window_end=int(self.window_end.timestamp()) if self.window_end else None,
            canary_percent=self.canary_percent,
            redirect_url=self.redirect_url,
            redirect_status=self.redirect_status,
        )


class RouteAudit(models.Model):
    class Action(models.TextChoices):
        CREATE = "create"
        UPDATE = "update"
        ENABLE = "enable"
        DISABLE = "disable"
        DELETE = "delete"
        ROLLBACK = "rollback"

    route = models.ForeignKey(Route, null=True, blank=True, on_delete=models.SET_NULL, related_name="audits")
    route_name = models.CharField(max_length=64)
    actor = models.CharField(max_length=150)
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    action = models.CharField(max_length=16, choices=Action.choices)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-at", "-pk"]
        verbose_name = "route change"
        verbose_name_plural = "route changes"

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor} {self.action} {self.route_name}"
