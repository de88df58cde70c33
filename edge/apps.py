from django.apps import AppConfig


class EdgeConfig(AppConfig):
    name = "edge"
    verbose_name = "Edge routing"

    def ready(self) -> None:
        from edge import route_version
        from edge.models import Origin, Route
        from edge.signals import sale_routes_off
        from orders.sales import sale_closed

        # The middleware compiles the routes once per version: every change replaces it.
        route_version.connect(Route, Origin)
        # A sale that ends, however it ends, takes its product's pages off the hot path.
        sale_closed.connect(sale_routes_off, dispatch_uid="edge.sale_routes_off")
