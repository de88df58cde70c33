"""Edge router middleware (replaced by the edge app's real router)."""


class EdgeRouterMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response["X-Edge-Route"] = "default"
        return response
