"""One OpenAPI operation per callable tool, built from the live catalog, and the document's cache.

`operations` turns `tools/list` entries into typed path items; `live` keeps each rendered variant
and its ETag in step with the listing the bridge answers. Used by the `functions` blueprints
(`openapi`, `openapi_api`); may import `calls` (the bridge's type) and the cross-cutting room.
"""
