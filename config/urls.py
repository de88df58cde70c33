"""URLs of the all-in-one server: the monolith with the legacy order API mounted beside it.

The hot path is not listed here: the edge router middleware serves requests routed to the
`hotpath` origin with `config.urls_hotpath`, exactly as CloudFront would send them there.
"""

from django.urls import include, path

from config.urls_monolith import urlpatterns as monolith_urlpatterns

urlpatterns = [path("legacy-api/", include("legacy_api.urls")), *monolith_urlpatterns]
