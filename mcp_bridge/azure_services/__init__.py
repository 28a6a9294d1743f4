"""Azure services: the httpx2 transport under the Azure SDKs, Key Vault reads, the Scheduler's
credentials held in Key Vault, and the settings loader that resolves Key Vault references.

May import the cross-cutting modules and config only; the credential is passed in by the caller.
"""
