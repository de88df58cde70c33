from django.http import HttpResponse
from django.urls import path

app_name = "shop"
urlpatterns = [
    path("shop/", lambda r: HttpResponse("shop"), name="home"),
    path("shop/<slug:category>/", lambda r, category: HttpResponse(category), name="category"),
    path("shop/<slug:category>/<slug:product>/", lambda r, category, product: HttpResponse(product), name="product"),
]
