"""The roles the Bicep grants the app's identity cover what the bridge and the Functions runtime do, and
nothing is granted that nothing needs.

What the bridge does is read from its code: every Azure SDK client method it calls (Blob Storage,
Key Vault) maps to the permission the service checks. A new call that is not mapped fails here, so
the roles are reviewed with the code. What the Functions runtime needs comes from its documentation,
cited beside each need. Role definitions are Azure's built-in ones (learn.microsoft.com, "Azure
built-in roles"), copied with their GUIDs.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from fnmatch import fnmatchcase

import pytest

from .templates import MAIN, ROLES, ROOT, app_settings, is_conditional, parse, resource_body, resources

STORAGE = "Microsoft.Storage/storageAccounts"
VAULT = "Microsoft.KeyVault/vaults"
INSIGHTS = "Microsoft.Insights/components"
BLOBS = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs"
CONTAINERS = "Microsoft.Storage/storageAccounts/blobServices/containers"
ENTITIES = "Microsoft.Storage/storageAccounts/tableServices/tables/entities"
TABLES = "Microsoft.Storage/storageAccounts/tableServices/tables"


@dataclass(frozen=True)
class Role:
    name: str
    actions: tuple[str, ...] = ()
    data_actions: tuple[str, ...] = ()

    def allows(self, permission: str) -> bool:
        return any(
            fnmatchcase(permission.lower(), granted.lower()) for granted in self.actions + self.data_actions
        )


BUILT_IN_ROLES = {
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": Role(
        "Storage Blob Data Owner",
        (
            f"{CONTAINERS}/*",
            "Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action",
        ),
        (f"{BLOBS}/*",),
    ),
    "ba92f5b4-2d11-453d-a403-e96b0029c9fe": Role(
        "Storage Blob Data Contributor",
        (f"{CONTAINERS}/delete", f"{CONTAINERS}/read", f"{CONTAINERS}/write"),
        (f"{BLOBS}/delete", f"{BLOBS}/read", f"{BLOBS}/write", f"{BLOBS}/move/action", f"{BLOBS}/add/action"),
    ),
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": Role(
        "Storage Table Data Contributor",
        (f"{TABLES}/read", f"{TABLES}/write", f"{TABLES}/delete"),
        (f"{ENTITIES}/read", f"{ENTITIES}/write", f"{ENTITIES}/delete", f"{ENTITIES}/add/action"),
    ),
    "974c5e8b-45b9-4653-ba55-5f855dd0fb88": Role(
        "Storage Queue Data Contributor",
        ("Microsoft.Storage/storageAccounts/queueServices/queues/*",),
        ("Microsoft.Storage/storageAccounts/queueServices/queues/messages/*",),
    ),
    "4633458b-17de-408a-b874-0445c86b69e6": Role(
        "Key Vault Secrets User",
        (),
        (
            "Microsoft.KeyVault/vaults/secrets/getSecret/action",
            "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
        ),
    ),
    "b86a8fe4-44ce-4948-aee5-eccb2c155cd7": Role(
        "Key Vault Secrets Officer",
        ("Microsoft.KeyVault/vaults/*/read",),
        ("Microsoft.KeyVault/vaults/secrets/*",),
    ),
    "3913510d-42f4-4e42-8a64-420c390055eb": Role(
        "Monitoring Metrics Publisher",
        ("Microsoft.Insights/Register/Action",),
        ("Microsoft.Insights/Metrics/Write", "Microsoft.Insights/Telemetry/Write"),
    ),
}

# Azure SDK client methods -> (the resource whose role is checked, the permission the call needs).
SDK_CALLS = {
    "download_blob": (STORAGE, f"{BLOBS}/read"),
    "get_blob_properties": (STORAGE, f"{BLOBS}/read"),
    "list_blobs": (STORAGE, f"{BLOBS}/read"),
    "upload_blob": (STORAGE, f"{BLOBS}/write"),
    "set_blob_metadata": (STORAGE, f"{BLOBS}/write"),
    "acquire_lease": (STORAGE, f"{BLOBS}/write"),
    "delete_blob": (STORAGE, f"{BLOBS}/delete"),
    "create_container": (STORAGE, f"{CONTAINERS}/write"),
    "get_secret": (VAULT, "Microsoft.KeyVault/vaults/secrets/getSecret/action"),
    "list_properties_of_secrets": (VAULT, "Microsoft.KeyVault/vaults/secrets/readMetadata/action"),
}
NO_REQUEST = {"close", "get_blob_client", "get_container_client", "from_connection_string"}
"""Client methods that send nothing (they build or close clients)."""

# What no code here shows: the Functions runtime (documented) and the idempotency store on its way.
RUNTIME_NEEDS = {
    # "Connecting to host storage with an identity": the host reads and writes blobs and creates
    # its containers (coordination, function keys, timer schedule monitor and singleton locks).
    "Functions host storage": [
        (STORAGE, f"{BLOBS}/read"),
        (STORAGE, f"{BLOBS}/write"),
        (STORAGE, f"{BLOBS}/delete"),
        (STORAGE, f"{CONTAINERS}/write"),
    ],
    # Same page: diagnostic events are kept in Table Storage (AzureWebJobsStorage__tableServiceUri).
    "Functions host diagnostic events": [
        (STORAGE, f"{TABLES}/write"),
        (STORAGE, f"{ENTITIES}/read"),
        (STORAGE, f"{ENTITIES}/write"),
    ],
    # Flex Consumption reads the package from the deployment container with the app identity.
    "Flex Consumption deployment package": [(STORAGE, f"{BLOBS}/read")],
    # Application Insights with local auth off takes telemetry from Monitoring Metrics Publishers.
    "Telemetry ingestion (Entra)": [(INSIGHTS, "Microsoft.Insights/Telemetry/Write")],
    # The idempotency store (next issue) keeps one blob per key: create, read, replace, expire.
    "Idempotency store": [
        (STORAGE, f"{BLOBS}/read"),
        (STORAGE, f"{BLOBS}/write"),
        (STORAGE, f"{BLOBS}/delete"),
        (STORAGE, f"{CONTAINERS}/write"),
    ],
}


@dataclass(frozen=True)
class Assignment:
    symbol: str
    role: Role
    scope_type: str
    principal: str
    conditional: bool


def assignments() -> list[Assignment]:
    template = parse(ROLES)
    found = []
    for symbol, body in resources(ROLES, "Microsoft.Authorization/roleAssignments"):
        definition = body["properties"]["roleDefinitionId"]["function"]
        assert definition["type"] == "subscription_resource_id", symbol
        guid = template["variables"][definition["parameters"]["resource_name_1"]]["value"]
        assert guid in BUILT_IN_ROLES, f"{symbol}: role {guid} is not in BUILT_IN_ROLES"
        scope_type = template["resources"][body["scope"]]["type"]
        principal = body["properties"]["principalId"]
        found.append(
            Assignment(symbol, BUILT_IN_ROLES[guid], scope_type, principal, is_conditional(ROLES, symbol))
        )
    return found


def sdk_calls_in_bridge() -> dict[str, set[str]]:
    """Azure SDK client methods called anywhere in mcp_bridge -> the modules calling them."""
    from azure.keyvault.secrets.aio import SecretClient
    from azure.storage.blob.aio import BlobClient, BlobServiceClient, ContainerClient

    sdk_methods = {
        name
        for client in (BlobServiceClient, ContainerClient, BlobClient, SecretClient)
        for name in dir(client)
        if not name.startswith("_")
    }
    calls: dict[str, set[str]] = {}
    for path in sorted((ROOT / "mcp_bridge").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in sdk_methods
            ):
                calls.setdefault(node.func.attr, set()).add(str(path.relative_to(ROOT)))
    return calls


def bridge_needs() -> dict[str, list[tuple[str, str]]]:
    calls = sdk_calls_in_bridge()
    unmapped = set(calls) - set(SDK_CALLS) - NO_REQUEST
    assert not unmapped, f"map these SDK calls to the permission they need: {unmapped}"
    return {
        f"bridge: {method} ({', '.join(sorted(calls[method]))})": [SDK_CALLS[method]]
        for method in calls
        if method in SDK_CALLS
    }


def app_assignments() -> list[Assignment]:
    return [a for a in assignments() if a.principal == "appPrincipalId"]


def test_the_bridge_code_uses_blob_storage_and_key_vault():
    calls = sdk_calls_in_bridge()
    assert {"upload_blob", "download_blob", "create_container", "get_secret"} <= set(calls)


@pytest.mark.parametrize("consumer", [*RUNTIME_NEEDS, *bridge_needs()])
def test_every_need_is_granted_to_the_app_identity(consumer: str):
    needs = {**RUNTIME_NEEDS, **bridge_needs()}[consumer]
    granted = [a for a in app_assignments() if not a.conditional]
    missing = [
        (scope, permission)
        for scope, permission in needs
        if not any(a.scope_type == scope and a.role.allows(permission) for a in granted)
    ]
    assert missing == []


def test_nothing_is_granted_to_the_app_that_nothing_needs():
    needs = [need for group in (RUNTIME_NEEDS, bridge_needs()) for items in group.values() for need in items]
    for assignment in app_assignments():
        used = [p for scope, p in needs if scope == assignment.scope_type and assignment.role.allows(p)]
        assert used, f"{assignment.symbol} ({assignment.role.name}) serves no need"
    roles = sorted(a.role.name for a in app_assignments())
    assert "Storage Queue Data Contributor" not in roles, "no queue or blob trigger here"


def test_the_app_identity_is_the_function_apps_and_the_user_only_sets_secrets():
    params = resource_body(parse(MAIN)["modules"]["roles"])["params"]
    assert "app" in str(params["appPrincipalId"]) and "principalId" in str(params["appPrincipalId"])
    assert params["userPrincipalId"] == "principalId"
    users = [a for a in assignments() if a.principal != "appPrincipalId"]
    assert [(a.role.name, a.scope_type, a.conditional) for a in users] == [
        ("Key Vault Secrets Officer", VAULT, True)
    ]
    [(_, site)] = resources(ROLES.parent / "functionapp.bicep", "Microsoft.Web/sites")
    assert site["identity"] == {"type": "SystemAssigned"}


def test_host_storage_settings_match_the_storage_roles():
    names = {setting["name"] for setting in app_settings()}
    roles = {a.role.name for a in app_assignments()}
    assert ("AzureWebJobsStorage__tableServiceUri" in names) == ("Storage Table Data Contributor" in roles)
    assert ("AzureWebJobsStorage__queueServiceUri" in names) == ("Storage Queue Data Contributor" in roles)
    assert "AzureWebJobsStorage__blobServiceUri" in names and "Storage Blob Data Owner" in roles


def test_a_role_that_lacks_a_permission_is_caught():
    reader = Role("Storage Blob Data Reader", (f"{CONTAINERS}/read",), (f"{BLOBS}/read",))
    assert reader.allows(f"{BLOBS}/read")
    assert not reader.allows(f"{BLOBS}/write")
    assert not BUILT_IN_ROLES["4633458b-17de-408a-b874-0445c86b69e6"].allows(
        "Microsoft.KeyVault/vaults/secrets/setSecret/action"
    )


def test_the_roles_file_is_the_only_place_roles_are_granted():
    elsewhere = [
        path.name
        for path in (ROOT / "infra").rglob("*.bicep")
        if path != ROLES and "Microsoft.Authorization/roleAssignments" in path.read_text()
    ]
    assert elsewhere == []
