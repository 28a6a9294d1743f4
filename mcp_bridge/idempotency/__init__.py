"""`Idempotency-Key` on tool calls: one execution per key, the first answer replayed to every repeat.

`keys` parses the header and fingerprints a call, `records` says what a stored record holds and
which answers are kept, `once` is the one flow both stores share, `memory` and `blob` are the two
stores (in-process; the `AzureWebJobsStorage` account), `shared` builds the process's one store.
Imported by the tool-call blueprint; imports `problems`, `settings` and, to reach storage, `runtime`.
"""

from .keys import idempotency_key
from .once import Policy, call_once
from .shared import describe, store_for

__all__ = ["Policy", "call_once", "describe", "idempotency_key", "store_for"]
