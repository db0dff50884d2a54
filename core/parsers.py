"""Request parsers for the API."""

from rest_framework import parsers
from rest_framework.exceptions import ParseError

from core.json_safety import MAX_JSON_DEPTH, json_depth_exceeds


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, refusing nesting deeper than MAX_JSON_DEPTH with a 400 (DRF's lets the
    decoder's RecursionError through as a 500 at ~1,000 levels)."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(f"JSON parse error - nested deeper than {MAX_JSON_DEPTH} levels.") from None
        too_deep = json_depth_exceeds(data)
        if too_deep is not None:
            where = f" in “{too_deep[0]}”" if too_deep else ""
            raise ParseError(f"JSON parse error - nested deeper than {MAX_JSON_DEPTH} levels{where}.")
        return data


API_PARSER_CLASSES = [JSONParser, parsers.FormParser, parsers.MultiPartParser]
