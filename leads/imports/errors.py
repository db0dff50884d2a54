from core.exceptions import ApplicationError


class InvalidImport(ApplicationError):
    """The file, its mapping or the job's state does not allow the import (a 400 on the pages)."""

    code = "invalid_import"
