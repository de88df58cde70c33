"""The legacy API's OpenAPI schema, served to its callers like every other endpoint (bearer token)."""

from drf_spectacular.views import SpectacularAPIView
from rest_framework.renderers import JSONRenderer

from legacy_api.api_base import BearerTokenAuthentication, IsCaller, legacy_exception_handler


class LegacySchemaView(SpectacularAPIView):
    authentication_classes = [BearerTokenAuthentication]
    permission_classes = [IsCaller]

    def get_exception_handler(self):
        return legacy_exception_handler

    def finalize_response(self, request, response, *args, **kwargs):
        # As every answer of the API (LegacyApiView): no cache on the way keeps it.
        response = super().finalize_response(request, response, *args, **kwargs)
        response.setdefault("Cache-Control", "no-store")
        return response

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        # Errors in the API's JSON, whatever format of schema was asked for.
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = JSONRenderer.media_type
        return response
