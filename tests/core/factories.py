import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from factory.django import DjangoModelFactory

from core.models import BenchReferenceRow, Notification
from core.roles import Role

User = get_user_model()


class UserFactory(DjangoModelFactory[User]):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@leadops.test")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    password = factory.django.Password("pw")

    @factory.post_generation
    def with_role(self, create: bool, extracted: str | None, **kwargs) -> None:
        """`UserFactory(with_role=Role.SALES_REP)` puts the user in that role's group."""
        if create and extracted:
            self.groups.add(Group.objects.get(name=Role(extracted).value))


def user_with_role(role: Role, **kwargs) -> User:
    return UserFactory(with_role=role, **kwargs)


class NotificationFactory(DjangoModelFactory[Notification]):
    class Meta:
        model = Notification

    recipient = factory.SubFactory(UserFactory)
    title = factory.Sequence(lambda n: f"Lead {n} was assigned to you")


class BenchReferenceRowFactory(DjangoModelFactory[BenchReferenceRow]):
    class Meta:
        model = BenchReferenceRow

    name = factory.Faker("name")
    email = factory.Faker("email")
    company = factory.Faker("company")
    score = 5
