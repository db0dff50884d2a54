import django.db.models.deletion
from django.db import migrations, models

# Django's names for the single-column indexes of the last-touch foreign keys (made in 0001).
LAST_TOUCH_INDEXES = ("leads_lead_last_source_id_e8b17d99", "leads_lead_last_campaign_id_a9005306")


def leave_room_for_hot_updates(apps, schema_editor):
    # A returning person's submission updates the lead row; free space on its page lets PostgreSQL
    # update it in place (HOT). Applies to pages written from now on.
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE leads_lead SET (fillfactor = 85)")


def back_to_full_pages(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE leads_lead RESET (fillfactor)")


class Migration(migrations.Migration):
    dependencies = [
        ("leads", "0004_drop_redundant_indexes"),
    ]

    # Only the indexes go; AlterField would also drop and re-validate the foreign keys.
    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="lead",
                    name="last_campaign",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="last_touch_leads",
                        to="leads.campaign",
                    ),
                ),
                migrations.AlterField(
                    model_name="lead",
                    name="last_source",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="last_touch_leads",
                        to="leads.source",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(f"DROP INDEX IF EXISTS {name}", reverse_sql=migrations.RunSQL.noop)
                for name in LAST_TOUCH_INDEXES
            ],
        ),
        migrations.RunPython(leave_room_for_hot_updates, back_to_full_pages),
    ]
