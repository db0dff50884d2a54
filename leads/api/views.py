from django.contrib.auth import get_user_model
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.filters import BaseFilterBackend
from rest_framework.generics import GenericAPIView
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.exceptions import Forbidden
from core.json_safety import json_storable, json_storable_problem
from core.parsers import API_PARSER_CLASSES
from core.serializers import PlainRepresentationMixin, ReusedFieldsMixin
from leads.api.authentication import ApiKeyAuthentication
from leads.api.permissions import IsApiKeyOrCanAddLeads, IsInternalUser
from leads.api.responses import with_errors
from leads.api.throttling import IntakeRateThrottle
from leads.filters import LeadFilter, lead_list_extensions_filter
from leads.hooks import lead_list_extensions
from leads.intake_schema import (
    IntakeInputSerializer,
    InternalIntakeInputSerializer,
    intake_payload_from_request_data,
    lead_data_from_validated,
)
from leads.models import ActivityKind, ApiKey, Lead, Stage
from leads.selectors import lead_get_for_user, lead_list_for_user, lead_timeline
from leads.services import (
    IntakeContext,
    activity_log,
    intake_submission_record_response,
    lead_capture,
    lead_stage_change,
    source_get_or_create,
)

User = get_user_model()


class UserRefSerializer(PlainRepresentationMixin, ReusedFieldsMixin, serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.SerializerMethodField()
    email = serializers.EmailField()

    def get_name(self, user) -> str:
        return user.get_full_name() or user.get_username()


class LeadOutputSerializer(PlainRepresentationMixin, ReusedFieldsMixin, serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.CharField()
    phone = serializers.CharField(source="phone_e164")
    first_name = serializers.CharField()
    last_name = serializers.CharField()
    title = serializers.CharField()
    company_name = serializers.CharField()
    company_domain = serializers.CharField()
    industry = serializers.CharField()
    company_size = serializers.CharField()
    country = serializers.CharField()
    region = serializers.CharField()
    stage = serializers.CharField()
    owner = UserRefSerializer(allow_null=True)
    assigned_at = serializers.DateTimeField(allow_null=True)
    first_contacted_at = serializers.DateTimeField(allow_null=True)
    score = serializers.IntegerField()
    channel = serializers.CharField()
    source = serializers.CharField(source="source.name", allow_null=True, default=None)
    campaign = serializers.CharField(source="campaign.name", allow_null=True, default=None)
    marketing_consent = serializers.BooleanField()
    custom_fields = serializers.DictField()
    created_at = serializers.DateTimeField()


class LeadPagination(CursorPagination):
    ordering = "-created_at"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class LeadListExtensionsFilterBackend(BaseFilterBackend):
    """The lead list's filters that other apps add (routing's `team`, `sla_breached`), after LeadFilter."""

    def filter_queryset(self, request, queryset, view):
        queryset, errors = lead_list_extensions_filter(queryset=queryset, data=request.query_params)
        if errors:
            raise serializers.ValidationError(errors)
        return queryset

    def get_schema_operation_parameters(self, view) -> list[dict]:
        return [
            {"name": name, "in": "query", "required": False, "schema": {"type": "string"}}
            for extension in lead_list_extensions()
            for name in extension.params
        ]


class LeadListCreateApi(GenericAPIView):
    """`GET` lists the leads the user may see; `POST` captures a lead (external forms and users)."""

    authentication_classes = [ApiKeyAuthentication, SessionAuthentication, TokenAuthentication]
    filter_backends = [DjangoFilterBackend, LeadListExtensionsFilterBackend]
    filterset_class = LeadFilter
    pagination_class = LeadPagination
    parser_classes = API_PARSER_CLASSES

    def get_serializer_class(self):
        # What `OPTIONS` describes (the capture's fields); GET and POST build their serializers themselves.
        return InternalIntakeInputSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return Lead.objects.none()
        return lead_list_for_user(user=self.request.user)

    def get_permissions(self):
        if self.request.method == "POST":
            return [IsApiKeyOrCanAddLeads()]
        return [IsInternalUser()]

    def get_throttles(self):
        if self.request.method == "POST":
            return [IntakeRateThrottle()]
        return []

    @extend_schema(
        operation_id="leads_list",
        responses=with_errors(
            {200: LeadOutputSerializer(many=True)},
            400,
            401,
            404,
            429,
            described={404: "The cursor is not one this list gave out."},
        ),
    )
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(LeadOutputSerializer(page, many=True).data)

    @extend_schema(
        operation_id="leads_capture",
        request=InternalIntakeInputSerializer,
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                str,
                OpenApiParameter.HEADER,
                description="A retried request with the same key returns the first response and changes nothing.",
            )
        ],
        responses=with_errors(
            {
                201: OpenApiResponse(LeadOutputSerializer, "A new lead."),
                200: OpenApiResponse(LeadOutputSerializer, "Matched an existing lead (same email or phone)."),
            },
            400,
            401,
            415,
            422,
            429,
        ),
    )
    def post(self, request: Request) -> Response:
        is_internal = not isinstance(request.auth, ApiKey)
        raw_payload = intake_payload_from_request_data(request.data)
        serializer_class = InternalIntakeInputSerializer if is_internal else IntakeInputSerializer
        serializer = serializer_class(data=raw_payload)
        serializer.is_valid(raise_exception=True)

        idempotency_key = request.headers.get("Idempotency-Key", "").strip()
        if len(idempotency_key) > 255:
            return Response({"idempotency_key": ["At most 255 characters."]}, status=400)
        if is_internal:
            source_name = serializer.validated_data.get("source", "")
            source = source_get_or_create(name=source_name) if source_name else None
            api_key = None
        else:
            api_key, source = request.auth, request.auth.source
        result = lead_capture(
            data=lead_data_from_validated(serializer.validated_data),
            context=IntakeContext(
                # What was sent, with what PostgreSQL cannot store (NUL, lone surrogates, 1e999) replaced.
                raw_payload=json_storable(raw_payload if isinstance(raw_payload, dict) else {"body": raw_payload}),
                source=source,
                api_key=api_key,
                submitted_by=request.user if is_internal else None,
                remote_addr=request.META.get("REMOTE_ADDR"),
                idempotency_key=idempotency_key,
            ),
        )
        if result.replayed and result.submission.response_body is not None:
            return Response(result.submission.response_body, status=result.submission.response_status)
        body = {**LeadOutputSerializer(result.lead).data, "created": result.created}
        response_status = status.HTTP_201_CREATED if result.created else status.HTTP_200_OK
        if idempotency_key and not result.replayed:
            intake_submission_record_response(submission=result.submission, status=response_status, body=body)
        return Response(body, status=response_status)


class LeadDetailApi(APIView):
    permission_classes = [IsInternalUser]

    @extend_schema(operation_id="leads_retrieve", responses=with_errors({200: LeadOutputSerializer}, 404))
    def get(self, request: Request, lead_id: int) -> Response:
        lead = lead_get_for_user(user=request.user, lead_id=lead_id)
        return Response(LeadOutputSerializer(lead).data)


class LeadStageChangeApi(APIView):
    permission_classes = [IsInternalUser]
    parser_classes = API_PARSER_CLASSES

    @extend_schema_serializer(component_name="LeadStageChangeInput")
    class InputSerializer(serializers.Serializer):
        to_stage = serializers.ChoiceField(choices=Stage.choices)
        reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")

    @extend_schema(
        operation_id="leads_stage_change",
        request=InputSerializer,
        responses=with_errors(
            {200: LeadOutputSerializer},
            400,
            404,
            415,
            described={400: "Per-field errors, or the transition is refused."},
        ),
    )
    def post(self, request: Request, lead_id: int) -> Response:
        lead = lead_get_for_user(user=request.user, lead_id=lead_id)
        if not request.user.has_perm("leads.change_lead_stage"):
            raise Forbidden("You may not change the stage of leads.")
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        lead = lead_stage_change(lead_id=lead.pk, actor=request.user, **serializer.validated_data)
        return Response(LeadOutputSerializer(lead).data)


# What people and integrations may log by hand; the rest is recorded by the system itself.
LOGGABLE_ACTIVITY_KINDS = [
    ActivityKind.CALL,
    ActivityKind.EMAIL_SENT,
    ActivityKind.EMAIL_OPENED,
    ActivityKind.EMAIL_CLICKED,
    ActivityKind.MEETING,
    ActivityKind.MESSAGE,
    ActivityKind.NOTE,
    ActivityKind.PAGE_VIEW,
]


class ActivityOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    occurred_at = serializers.DateTimeField()
    actor = UserRefSerializer(allow_null=True)
    payload = serializers.DictField()


class LeadActivityListCreateApi(APIView):
    """The lead's timeline (`GET`), and logging a call, email, meeting, message or note (`POST`)."""

    permission_classes = [IsInternalUser]
    parser_classes = API_PARSER_CLASSES

    @extend_schema_serializer(component_name="LeadActivityInput")
    class InputSerializer(serializers.Serializer):
        kind = serializers.ChoiceField(choices=[(k.value, k.label) for k in LOGGABLE_ACTIVITY_KINDS])
        occurred_at = serializers.DateTimeField(required=False)
        note = serializers.CharField(max_length=5000, required=False, allow_blank=True)
        payload = serializers.DictField(required=False)

        def validate_payload(self, value: dict) -> dict:
            # PostgreSQL's jsonb refuses NUL, lone surrogates and non-finite numbers (1e999).
            problem = json_storable_problem(value)
            if problem:
                raise serializers.ValidationError(problem)
            return value

    @extend_schema(
        operation_id="leads_activities_list", responses=with_errors({200: ActivityOutputSerializer(many=True)}, 404)
    )
    def get(self, request: Request, lead_id: int) -> Response:
        lead = lead_get_for_user(user=request.user, lead_id=lead_id)
        return Response(ActivityOutputSerializer(lead_timeline(lead=lead), many=True).data)

    @extend_schema(
        operation_id="leads_activities_create",
        request=InputSerializer,
        responses=with_errors(
            {201: ActivityOutputSerializer},
            400,
            404,
            415,
            described={400: "Per-field errors (e.g. a payload PostgreSQL cannot store), or a body that is not JSON."},
        ),
    )
    def post(self, request: Request, lead_id: int) -> Response:
        lead = lead_get_for_user(user=request.user, lead_id=lead_id)
        if not request.user.has_perm("leads.add_activity"):
            raise Forbidden("You may not log activities.")
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        payload = dict(serializer.validated_data.get("payload") or {})
        if serializer.validated_data.get("note"):
            payload["note"] = serializer.validated_data["note"]
        activity = activity_log(
            lead_id=lead.pk,
            kind=serializer.validated_data["kind"],
            actor=request.user,
            payload=payload,
            occurred_at=serializer.validated_data.get("occurred_at"),
        )
        return Response(ActivityOutputSerializer(activity).data, status=status.HTTP_201_CREATED)
