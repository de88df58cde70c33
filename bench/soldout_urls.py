"""The hot path's URLs with the trivial view's before them, for `bench.soldout_requests`: one
process serves both with the same middlewares, and a sold-out order tries one pattern more."""

from django.urls import path

from bench.ceiling_urls import ceiling
from config.urls_hotpath import handler400, handler403, handler404, handler500  # noqa: F401 - Django reads them
from config.urls_hotpath import urlpatterns as hotpath_urlpatterns

urlpatterns = [path("ceiling", ceiling), *hotpath_urlpatterns]
