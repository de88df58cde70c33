"""The legacy API's OpenAPI schema, served to its callers like every other endpoint (bearer token)."""

from drf_spectacular.views import SpectacularAPIView
from rest_framework.renderers import JSONRenderer

from legacy_api.api_base import BearerTokenAuthentication, IsCaller, legacy_exception_handler


class LegacySchemaView(SpectacularAPIView):
    authentication_classes = [BearerTokenAuthentication]
    permission_classes = [IsCaller]

    def get_exception_handler(self):
        return legacy_exception_handler

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        # Errors in the API's JSON, whatever format of schema was asked for.
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = JSONRenderer.media_type
        return response
