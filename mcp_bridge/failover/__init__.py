"""Failover: endpoint health, the probes, the retry policy, the health snapshot shared by instances.

May import upstream, azure_services, the cross-cutting modules and config; never calls, runtime or
functions (a probe sees the bridge through the narrow `probe.ProbeTarget` protocol).
"""
