"""`Idempotency-Key` on tool calls: one execution per key, the first answer replayed to every repeat.

`keys` parses the header and fingerprints a call, `records` says what a stored record holds and
which answers are kept, `once` is the one flow both stores share, `stores` what it needs of a store,
`memory` and `blob` the two stores (in-process; the `AzureWebJobsStorage` account), `shared` the
process's one store. Used by the tool-call and health blueprints; may import `runtime` (for the
credential of identity-based storage), `azure_services` (storage's transport), the cross-cutting
room (`problems`, `redaction`) and `config`.
"""
