"""URL routes. Every page requires login (LoginRequiredMiddleware) except login and /healthz."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path

from planner.views import health, plans

urlpatterns = [
    path("", plans.plan_list, name="plan-list"),
    path("plans/<int:plan_id>/", plans.plan_detail, name="plan-detail"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("healthz", health.healthz, name="healthz"),
    path("admin/", admin.site.urls),
]
