"""The error answers of the API, documented once and listed per operation in `extend_schema`.

Every status an operation really gives is in its schema: the contract test
(tests/api/test_contract.py) fuzzes each operation and fails on an undocumented one. Use
`with_errors({200: OutputSerializer}, 400, 404, described={404: "..."})` as `responses=`.
"""

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse

ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "Invalid input: per-field errors (`{field: [messages]}`), or a body that is not valid JSON.",
    401: "The API key is missing, wrong or revoked (`WWW-Authenticate: Api-Key`).",
    403: "Not signed in, or not allowed to do this (`{detail, code}`).",
    404: "No such object, or not one you may see.",
    409: "The state changed under you (someone else was first); read again and retry.",
    414: "The request line is longer than the server accepts (answered by the server, before the app).",
    415: "The body is not `application/json`, a form or multipart.",
    422: "The Idempotency-Key was already used with a different body.",
    429: "Too many requests (rate limit, or too many invalid API keys from this address); see `Retry-After`.",
}

# What every operation may answer whatever its input: no or wrong credentials, and the server's own
# limit on the request line.
COMMON_ERRORS = (403, 414)


def with_errors(ok: dict[int, Any], *codes: int, described: dict[int, str] | None = None) -> dict[int, Any]:
    """`ok` (the success responses) plus an error response for each code in `codes` and in
    COMMON_ERRORS, described by ERROR_DESCRIPTIONS unless `described` says more."""
    described = described or {}
    responses = dict(ok)
    for code in sorted({*codes, *COMMON_ERRORS}):
        responses[code] = OpenApiResponse(OpenApiTypes.OBJECT, described.get(code, ERROR_DESCRIPTIONS[code]))
    return responses
