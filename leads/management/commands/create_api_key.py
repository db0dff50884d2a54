from django.core.management.base import BaseCommand, CommandParser

from leads.services import api_key_create, source_get_or_create


class Command(BaseCommand):
    help = "Create an intake API key for a source (created if new). Prints the raw key once, on the last line."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("source_name")
        parser.add_argument("--name", default="", help="A label for the key, e.g. the form it is used on.")

    def handle(self, *args, source_name: str, name: str, **options) -> None:
        source = source_get_or_create(name=source_name)
        api_key, raw_key = api_key_create(source=source, name=name)
        self.stderr.write(f"Key {api_key.prefix}… for source “{source.name}”. Store it now: it is not shown again.")
        self.stdout.write(raw_key)
