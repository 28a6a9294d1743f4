"""The call path: `bridge` composes `endpoints` (which region, and may the call move on),
`attempt` (one try at one region) and `outcomes` (what a failure means for the caller).

May import callers, failover, upstream, azure_services, the cross-cutting modules and config; never
runtime or functions (the composition root hands the bridge everything it needs).
"""
