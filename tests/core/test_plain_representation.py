"""The fast output path gives exactly what DRF's generic one gives."""

import pytest
from rest_framework import serializers

from leads.api.views import LeadOutputSerializer
from tests.core.factories import UserFactory
from tests.leads.factories import CampaignFactory, LeadFactory

pytestmark = pytest.mark.django_db


def drf_representation(instance) -> dict:
    return serializers.Serializer.to_representation(LeadOutputSerializer(), instance)


@pytest.mark.parametrize("related", [True, False], ids=["owner-source-campaign", "none-of-them"])
def test_a_lead_reads_the_same_as_through_drfs_generic_path(related):
    # given
    extra = {"owner": UserFactory(first_name="Grace", last_name=""), "campaign": CampaignFactory()} if related else {}
    lead = LeadFactory(custom_fields={"seats": 12, "plan": "pro"}, **extra)
    if not related:
        lead.source = None
    # when
    fast = LeadOutputSerializer(lead).data
    # then
    generic = drf_representation(lead)
    assert {**fast, "owner": None} == {**generic, "owner": None}
    if related:
        owner = lead.owner
        assert fast["owner"] == {"id": owner.pk, "name": "Grace", "email": owner.email}
        assert fast["campaign"] == lead.campaign.name
    else:
        assert fast["owner"] is None and fast["campaign"] is None and fast["source"] is None
