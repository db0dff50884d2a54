import logging
import math
from collections.abc import Callable
from functools import wraps

from csp.constants import UNSAFE_INLINE
from csp.decorators import csp_update
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.db import connection
from django.http import HttpRequest, HttpResponse, HttpResponseServerError, JsonResponse
from django.shortcuts import render
from django.template import loader
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.permissions import AllowAny, BasePermission, IsAuthenticated

from core.auth_limits import auth_failure_record, auth_failures_forget, auth_failures_retry_after, login_counters

logger = logging.getLogger("leadops.security")


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "home.html")


def login_limited(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Wrap a sign-in view (ours, the admin's): count failed sign-ins per client address and per
    username, and past DJANGO_LOGIN_FAILURES_PER_IP / _PER_USERNAME answer 429 with Retry-After
    without checking the password. A sign-in view answers a failure with the form again (200) and
    a success with a redirect."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if request.method != "POST":
            return view(request, *args, **kwargs)
        counters = login_counters(request, username=request.POST.get("username", ""))
        retry_after = auth_failures_retry_after(counters)
        if retry_after is not None:
            logger.info("Sign-in refused (too many failures): %s", ", ".join(c.ident for c in counters))
            context = {
                "form": AuthenticationForm(request),
                "next": request.POST.get("next", ""),
                "locked_out_minutes": math.ceil(retry_after / 60),
            }
            response = render(request, "registration/login.html", context, status=429)
            response["Retry-After"] = str(retry_after)
            return response
        response = view(request, *args, **kwargs)
        if response.status_code == 200:
            auth_failure_record(counters)
            logger.info("Failed sign-in: %s", ", ".join(c.ident for c in counters))
        elif 300 <= response.status_code < 400:
            auth_failures_forget(counters[1:])  # the username's count; never the address's
        return response

    return wrapped


class ApiSchemaView(SpectacularAPIView):
    """The OpenAPI schema: for signed-in users (session or token) unless DJANGO_API_DOCS_PUBLIC."""

    def get_permissions(self) -> list[BasePermission]:
        return [AllowAny() if settings.LEADOPS_API_DOCS_PUBLIC else IsAuthenticated()]


_swagger_ui = csp_update({"style-src": [UNSAFE_INLINE]})(  # Swagger UI styles itself inline; no script is inline
    SpectacularSwaggerSplitView.as_view(url_name="api-schema", permission_classes=[AllowAny])
)
_swagger_ui_signed_in = login_required(_swagger_ui)


def api_docs(request: HttpRequest, *args, **kwargs) -> HttpResponse:
    """Swagger UI (its script served as a file, for the CSP): the sign-in page first unless
    DJANGO_API_DOCS_PUBLIC."""
    view = _swagger_ui if settings.LEADOPS_API_DOCS_PUBLIC else _swagger_ui_signed_in
    return view(request, *args, **kwargs)


def healthz(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


def error_403(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(request, "403.html", status=403)


def error_404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if request.path.startswith("/api/"):
        # A path under the API that no route matches (an id the URL converter refuses, say) gets the
        # API's own 404 body, the content type its schema documents, not the HTML page.
        return JsonResponse({"detail": "Not found.", "code": "not_found"}, status=404)
    return render(request, "404.html", status=404)


def error_500(request: HttpRequest) -> HttpResponse:
    # No request context: the context processors query the database, which may be what failed.
    return HttpResponseServerError(loader.get_template("500.html").render())
