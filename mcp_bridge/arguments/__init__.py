"""Tool arguments beyond what JSON Schema validation says: names a tool's schema does not declare.

`strict` finds them and builds the 400. Used by the call path (`calls.attempt`) next to the
catalog's schema check; may import only the cross-cutting room (`problems`).
"""
