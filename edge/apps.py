from django.apps import AppConfig


class EdgeConfig(AppConfig):
    name = "edge"
    verbose_name = "Edge routing"

    def ready(self) -> None:
        from edge import route_version
        from edge.models import Origin, Route

        # The middleware compiles the routes once per version: every change replaces it.
        route_version.connect(Route, Origin)
