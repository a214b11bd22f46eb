from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from runs.api.app import api
from runs.metrics import metrics_view

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/v1/", api.urls),
    path("metrics", metrics_view, name="metrics"),
    path("", include("runs.urls")),
]
