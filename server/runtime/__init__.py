"""The runtime: one query service behind every front end (see service.py)."""

from .access import ANONYMOUS, SYSTEM, Grant, Identity
from .limits import Limits
from .service import Prepared, QueryStream, Runtime, deprecation_warnings, safe_url
from .state import CatalogState, error_list

__all__ = ["ANONYMOUS", "SYSTEM", "Grant", "CatalogState", "Identity", "Limits", "Prepared", "QueryStream", "Runtime",
           "deprecation_warnings", "error_list", "safe_url"]
