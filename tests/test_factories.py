"""Every model of the project has a factory that builds a valid row (issue 2: factories for every model)."""

import inspect

import pytest
from django.apps import apps
from factory.django import DjangoModelFactory

from tests.core import factories as core_factories
from tests.leads import factories as leads_factories
from tests.routing import factories as routing_factories

pytestmark = pytest.mark.django_db

FACTORIES = {
    factory_class._meta.model: factory_class
    for module in (core_factories, leads_factories, routing_factories)
    for _, factory_class in inspect.getmembers(module, inspect.isclass)
    if issubclass(factory_class, DjangoModelFactory) and factory_class._meta.model is not None
}
PROJECT_MODELS = [model for app in ("core", "leads", "routing") for model in apps.get_app_config(app).get_models()]


@pytest.mark.parametrize("model", PROJECT_MODELS, ids=lambda model: model.__name__)
def test_every_model_has_a_factory_that_saves_a_valid_row(model, settings, tmp_path):
    # given
    settings.MEDIA_ROOT = tmp_path
    factory_class = FACTORIES.get(model)
    assert factory_class is not None, f"no factory for {model.__name__}"
    # when
    instance = factory_class()
    # then
    instance.full_clean(validate_unique=False, validate_constraints=True)
    assert model.objects.filter(pk=instance.pk).exists()
