"""Routing API: the pull queue and claims, dry runs, reassignment. Thin: validate, call one service."""

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.exceptions import Forbidden
from leads.api.permissions import IsInternalUser
from leads.api.responses import with_errors
from leads.api.views import LeadOutputSerializer
from leads.models import Channel, CompanySize
from leads.selectors import lead_get_for_user
from leads.services import lead_sample_build
from routing.selectors import (
    assignment_list_for_lead,
    queue_list_for_rep,
    rep_assignable_get,
    rep_get_for_user_or_403,
    user_can_dry_run,
    user_can_reassign,
)
from routing.services import lead_claim, lead_claim_next, lead_reassign, rep_leads_reassign, routing_dry_run


class CandidateSerializer(serializers.Serializer):
    rep = serializers.IntegerField()
    name = serializers.CharField()
    eligible = serializers.BooleanField()
    note = serializers.CharField(allow_blank=True)
    chosen = serializers.BooleanField(required=False, default=False)


class DecisionOutputSerializer(serializers.Serializer):
    rule = serializers.CharField(source="rule.name")
    rule_id = serializers.IntegerField(source="rule.pk")
    arm = serializers.CharField()
    method = serializers.CharField()
    rep_id = serializers.IntegerField(source="rep.pk", allow_null=True, default=None)
    owner_id = serializers.IntegerField(source="rep.user_id", allow_null=True, default=None)
    owner = serializers.CharField(source="rep", allow_null=True, default=None)
    queue = serializers.CharField(source="queue.name", allow_null=True, default=None)
    reason = serializers.CharField()
    candidates = CandidateSerializer(many=True)


class AssignmentOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    method = serializers.CharField()
    arm = serializers.CharField()
    rule = serializers.CharField(source="rule_name")
    owner_id = serializers.IntegerField(source="rep.user_id", allow_null=True, default=None)
    queue = serializers.CharField(source="queue.name", allow_null=True, default=None)
    reason = serializers.CharField()
    candidates = CandidateSerializer(many=True)


class QueueEntryOutputSerializer(serializers.Serializer):
    lead = LeadOutputSerializer()
    queue = serializers.CharField(source="queue.name")
    enqueued_at = serializers.DateTimeField()
    due_at = serializers.DateTimeField()


class QueueListApi(APIView):
    permission_classes = [IsInternalUser]

    @extend_schema(
        operation_id="queue_list",
        responses=with_errors(
            {200: QueueEntryOutputSerializer(many=True)}, described={403: "Not signed in, or not a sales rep."}
        ),
    )
    def get(self, request: Request) -> Response:
        rep = rep_get_for_user_or_403(user=request.user)
        return Response(QueueEntryOutputSerializer(queue_list_for_rep(rep=rep), many=True).data)


class LeadClaimApi(APIView):
    permission_classes = [IsInternalUser]

    @extend_schema(
        operation_id="queue_claim",
        request=None,
        responses=with_errors(
            {200: OpenApiResponse(LeadOutputSerializer, "You got the lead.")},
            404,
            409,
            described={
                403: "Not signed in, not a rep, not eligible for this queue, or at capacity.",
                404: "The lead is not in a queue.",
                409: "Someone else claimed it first.",
            },
        ),
    )
    def post(self, request: Request, lead_id: int) -> Response:
        rep = rep_get_for_user_or_403(user=request.user)
        lead = lead_claim(rep=rep, lead_id=lead_id)
        return Response(LeadOutputSerializer(lead).data)


class LeadClaimNextApi(APIView):
    permission_classes = [IsInternalUser]

    @extend_schema(
        operation_id="queue_claim_next",
        request=None,
        responses=with_errors(
            {
                200: OpenApiResponse(LeadOutputSerializer, "The best waiting lead is yours."),
                204: OpenApiResponse(description="The queue is empty."),
            },
            described={403: "Not signed in, not a rep, at capacity or inactive."},
        ),
    )
    def post(self, request: Request) -> Response:
        rep = rep_get_for_user_or_403(user=request.user)
        lead = lead_claim_next(rep=rep)
        if lead is None:
            return Response(status=204)
        return Response(LeadOutputSerializer(lead).data)


class RoutingDryRunApi(APIView):
    """Who would get this lead now, and why, without assigning anything."""

    permission_classes = [IsInternalUser]

    @extend_schema_serializer(component_name="RoutingDryRunInput")
    class InputSerializer(serializers.Serializer):
        lead_id = serializers.IntegerField(required=False)
        email = serializers.CharField(required=False, allow_blank=True, default="")
        company_name = serializers.CharField(required=False, allow_blank=True, default="")
        company_domain = serializers.CharField(required=False, allow_blank=True, default="")
        title = serializers.CharField(required=False, allow_blank=True, default="")
        industry = serializers.CharField(required=False, allow_blank=True, default="")
        company_size = serializers.ChoiceField(choices=CompanySize.choices, required=False, allow_blank=True)
        country = serializers.CharField(required=False, allow_blank=True, default="", max_length=2)
        region = serializers.CharField(required=False, allow_blank=True, default="")
        postal_code = serializers.CharField(required=False, allow_blank=True, default="")
        channel = serializers.ChoiceField(choices=Channel.choices, required=False)
        score = serializers.IntegerField(required=False, default=0)
        custom_fields = serializers.DictField(required=False, default=dict)

    @extend_schema(
        operation_id="routing_dry_run",
        request=InputSerializer,
        responses=with_errors(
            {200: DecisionOutputSerializer}, 400, 404, 415, described={404: "No such lead, or not one you may see."}
        ),
    )
    def post(self, request: Request) -> Response:
        if not user_can_dry_run(request.user):
            raise Forbidden("Only marketing ops, managers and admins can test routing.")
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        lead_id = data.pop("lead_id", None)
        if lead_id is not None:
            lead = lead_get_for_user(user=request.user, lead_id=lead_id)
        else:
            lead = lead_sample_build(fields=data)
        decision = routing_dry_run(lead=lead)
        return Response(DecisionOutputSerializer(decision).data)


class LeadAssignmentListApi(APIView):
    permission_classes = [IsInternalUser]

    @extend_schema(
        operation_id="lead_assignments", responses=with_errors({200: AssignmentOutputSerializer(many=True)}, 404)
    )
    def get(self, request: Request, lead_id: int) -> Response:
        lead = lead_get_for_user(user=request.user, lead_id=lead_id)
        return Response(AssignmentOutputSerializer(assignment_list_for_lead(lead_id=lead.pk), many=True).data)


class LeadReassignApi(APIView):
    permission_classes = [IsInternalUser]

    @extend_schema_serializer(component_name="LeadReassignInput")
    class InputSerializer(serializers.Serializer):
        to_rep = serializers.IntegerField(required=False, allow_null=True, help_text="Empty: route through the rules.")
        reason = serializers.CharField(max_length=400)

    @extend_schema(
        operation_id="lead_reassign",
        request=InputSerializer,
        responses=with_errors(
            {200: AssignmentOutputSerializer},
            400,
            404,
            409,
            415,
            described={
                403: "Not signed in, not a manager, or the chosen rep is at capacity.",
                409: "The lead already belongs to this rep.",
            },
        ),
    )
    def post(self, request: Request, lead_id: int) -> Response:
        if not user_can_reassign(request.user):
            raise Forbidden("Only managers can reassign leads.")
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        lead = lead_get_for_user(user=request.user, lead_id=lead_id)
        assignment = lead_reassign(
            lead_id=lead.pk,
            to_rep=rep_assignable_get(user=request.user, rep_id=serializer.validated_data.get("to_rep")),
            actor=request.user,
            reason=serializer.validated_data["reason"],
        )
        return Response(AssignmentOutputSerializer(assignment).data)


class RepLeadsReassignApi(APIView):
    """A rep leaving: every open lead of theirs to another rep, or through the rules."""

    permission_classes = [IsInternalUser]

    @extend_schema_serializer(component_name="RepLeadsReassignInput")
    class InputSerializer(serializers.Serializer):
        to_rep = serializers.IntegerField(required=False, allow_null=True)
        reason = serializers.CharField(max_length=400)

    @extend_schema_serializer(component_name="RepLeadsReassignOutput")
    class OutputSerializer(serializers.Serializer):
        moved = serializers.IntegerField()
        failed = serializers.DictField(child=serializers.CharField())

    @extend_schema(
        operation_id="rep_leads_reassign",
        request=InputSerializer,
        responses=with_errors({200: OutputSerializer}, 400, 404, 415),
    )
    def post(self, request: Request, rep_id: int) -> Response:
        if not user_can_reassign(request.user):
            raise Forbidden("Only managers can reassign leads.")
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        rep = rep_assignable_get(user=request.user, rep_id=rep_id)
        result = rep_leads_reassign(
            rep=rep,
            to_rep=rep_assignable_get(user=request.user, rep_id=serializer.validated_data.get("to_rep")),
            actor=request.user,
            reason=serializer.validated_data["reason"],
        )
        return Response({"moved": len(result.assignments), "failed": {str(k): v for k, v in result.failed.items()}})
