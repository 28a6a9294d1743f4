"""Long-running operations: tool calls that run as MCP tasks, answered the Azure way (202, a
status monitor at `Operation-Location`, then the result). See docs/long-running.md.

`ids` makes and checks operation ids, `records` keeps each operation in the idempotency store
(shared blob storage, or this process), `poller` reads a task at most once per poll interval per
instance, `monitor` shapes the status monitor, `service` starts, reads and cancels operations, and
`watch` follows one to its end (for streaming). May import the rooms below it: idempotency (its
store), runtime, calls, callers, upstream and the cross-cutting modules.
"""
