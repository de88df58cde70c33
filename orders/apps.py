from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = "Hot path"

    def ready(self) -> None:
        from orders import signals  # noqa: F401 - connects the cache invalidation
