"""URLs of the all-in-one server: the monolith with the legacy order API mounted beside it.

The hot path is not listed here: the edge router middleware serves requests routed to the
`hotpath` origin with `config.urls_hotpath`, exactly as CloudFront would send them there.
"""

from django.conf import settings
from django.urls import include, path

from config.urls_monolith import urlpatterns as monolith_urlpatterns

# In production the legacy API is its own deployment (config.urls_legacy), never a path of the shop.
urlpatterns = [
    *([] if settings.DJANGO_ENV == "production" else [path("legacy-api/", include("legacy_api.urls"))]),
    *monolith_urlpatterns,
]

# Errors: JSON in one shape under the API prefixes, the shop's error pages elsewhere.
handler400 = "config.errors.handler400"
handler403 = "config.errors.handler403"
handler404 = "config.errors.handler404"
handler500 = "config.errors.handler500"
