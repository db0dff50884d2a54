"""Reference endpoint for bench/intake.py: a plain DRF ModelSerializer that validates four fields
and inserts one row, to measure the intake against the ceiling of a DRF write on the same stack."""

from django.urls import path
from rest_framework import permissions, serializers
from rest_framework.generics import CreateAPIView

from core.models import BenchReferenceRow


class BenchReferenceSerializer(serializers.ModelSerializer):
    class Meta:
        model = BenchReferenceRow
        fields = ["id", "name", "email", "company", "score"]


class BenchReferenceCreateApi(CreateAPIView):
    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]
    serializer_class = BenchReferenceSerializer


urlpatterns = [path("reference/", BenchReferenceCreateApi.as_view(), name="bench-reference")]
