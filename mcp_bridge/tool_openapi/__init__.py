"""One OpenAPI operation per callable tool, built from the live catalog, and the document's cache.

`operations` turns `tools/list` entries into typed path items; `live` keeps the rendered document
and its ETag in step with the catalog the bridge lists. Imports `openapi` (the static routes) and
is imported by the `openapi_api` blueprint.
"""

from .operations import add_tool_operations, operation_id

__all__ = ["add_tool_operations", "operation_id"]
