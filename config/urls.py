from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from core import views as core_views
from core.views import login_limited

urlpatterns = [
    path("", core_views.home, name="home"),
    path("login/", login_limited(auth_views.LoginView.as_view(redirect_authenticated_user=True)), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/login/", login_limited(admin.site.login)),  # the admin's own sign-in, same limits
    path("admin/", admin.site.urls),
    path("leads/import/", include("leads.import_urls")),
    path("leads/<int:lead_id>/privacy/", include("leads.privacy_urls")),
    path("leads/", include("leads.urls")),
    path("leads/", include("routing.lead_urls")),  # the lead page's routing panels post here
    path("api/v1/", include("leads.api.urls")),
    path("api/v1/", include("routing.api.urls")),
    path("routing/", include("routing.urls")),
    path("sla/", include("routing.sla_urls")),
    path("api/schema/", core_views.ApiSchemaView.as_view(), name="api-schema"),
    path("api/docs/", core_views.api_docs, name="api-docs"),
    path("healthz", core_views.healthz, name="healthz"),
]

if settings.LEADOPS_BENCH_ENDPOINTS:
    urlpatterns.append(path("bench/", include("core.bench_urls")))

handler403 = "core.views.error_403"
handler404 = "core.views.error_404"
handler500 = "core.views.error_500"
