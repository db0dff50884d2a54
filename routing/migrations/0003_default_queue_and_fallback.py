from django.db import migrations


def create_fallback(apps, schema_editor):
    Queue = apps.get_model("routing", "Queue")
    RoutingRule = apps.get_model("routing", "RoutingRule")
    RuleAction = apps.get_model("routing", "RuleAction")
    queue, _ = Queue.objects.get_or_create(name="Unassigned", defaults={"sla_minutes": 60})
    if not RoutingRule.objects.filter(is_fallback=True).exists():
        rule = RoutingRule.objects.create(
            name="Fallback", position=1_000_000, is_fallback=True, queue=queue, conditions=[]
        )
        RuleAction.objects.create(rule=rule, arm="A", method="queue", queue=queue)


class Migration(migrations.Migration):
    dependencies = [("routing", "0002_rules_queues_assignments")]

    operations = [migrations.RunPython(create_fallback, migrations.RunPython.noop)]
