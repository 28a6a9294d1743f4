"""The Functions-facing blueprints: the tool and status routes, the health timer and route, OpenAPI.

May import every room below it (runtime, calls, failover, config, the cross-cutting modules), but
anything heavy only inside a handler: the host imports this room to index the functions.
"""
