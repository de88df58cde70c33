"""The hot path's fixtures (a hot product with its sale, the legacy API, workers' environment),
shared with the tracing tests that run a real order through every hop."""

from tests.orders.conftest import (  # noqa: F401 - fixtures
    allocation,
    category,
    clean_cache,
    legacy_api,
    legacy_env,
    product,
    worker_env,
)
from tests.shop.conftest import demo_shop_url, live_shop_url  # noqa: F401 - fixtures of the trace page's browser test
