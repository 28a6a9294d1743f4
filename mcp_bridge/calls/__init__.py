"""The call path: `SchedulerBridge` chooses an endpoint, makes an attempt, maps its outcome.

May import failover, upstream, azure_services, the cross-cutting modules and config; never runtime
or functions (the composition root hands the bridge everything it needs).
"""
