"""The app settings the Bicep gives the function app are the ones the bridge reads, spelt the same.

A setting the bridge does not know is silently ignored in Azure (pydantic-settings drops unknown
names), so a misspelt `SCHEDULER_ENDPONITS` would deploy fine and fail on the first call. Here every
name must be a `BridgeSettings` field, an `EnvVar` constant, or one of the few settings the platform
itself reads; and the settings, filled with the values a deployment would give them, must pass the
bridge's own validation.
"""

from __future__ import annotations

import itertools
import json
import re
from typing import Any, get_args

import pytest

from mcp_bridge.config.loader import parse_settings
from mcp_bridge.config.settings import AuthMode, BridgeSettings, EnvVar

from .templates import (
    FUNCTION_APP,
    MAIN,
    allowed_values,
    app_settings,
    parse,
    resource_body,
    upstream_settings,
)

PLATFORM_SETTINGS = {
    # Functions host: identity-based host storage ("Connecting to host storage with an identity").
    "AzureWebJobsStorage__credential": "Functions host",
    "AzureWebJobsStorage__tableServiceUri": "Functions host (diagnostic events)",
    # azure-monitor-opentelemetry-exporter: Entra authentication for ingestion.
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "Azure Monitor exporter",
}
"""Read by the platform, not by mcp_bridge: each one is named in the Bicep beside its reason."""

# Values a deployment would give the settings whose value is an expression or a required parameter.
SAMPLE_PARAMETERS = {
    "schedulerEndpoints": "https://scheduler-east.example.com/mcp,https://scheduler-west.example.com/mcp",
    "schedulerTokenScope": "api://00000000-0000-0000-0000-00000000cafe/.default",
    "keyVaultUri": "https://kv-abcdefghijklm.vault.azure.net/",
}
SAMPLE_EXPRESSIONS = {
    "AzureWebJobsStorage__blobServiceUri": "https://stabcdefghijklm.blob.core.windows.net/",
    "AzureWebJobsStorage__tableServiceUri": "https://stabcdefghijklm.table.core.windows.net/",
    "APPLICATIONINSIGHTS_CONNECTION_STRING": (
        "InstrumentationKey=00000000-0000-0000-0000-000000000000;"
        "IngestionEndpoint=https://westeurope-5.in.applicationinsights.azure.com/"
    ),
}


def known_setting_names() -> set[str]:
    fields = {name.lower() for name in BridgeSettings.model_fields}
    constants = {value.lower() for key, value in vars(EnvVar).items() if key.isupper()}
    return fields | constants | {name.lower() for name in PLATFORM_SETTINGS}


def unknown_settings(names: list[str]) -> list[str]:
    known = known_setting_names()
    return [name for name in names if name.lower() not in known]


def test_every_setting_is_one_the_bridge_or_the_platform_reads():
    names = [setting["name"] for setting in app_settings()]
    assert len(names) == len({name.lower() for name in names}), "a setting is set twice"
    assert unknown_settings(names) == []


def test_a_misspelt_name_is_caught():
    assert unknown_settings(["SCHEDULER_ENDPOINT", "SCHEDULER_ENDPOINTS", "KEYVAULT_URL"]) == [
        "SCHEDULER_ENDPOINT",
        "KEYVAULT_URL",
    ]


def test_settings_the_functions_need_to_index_are_set(functions):
    """Binding expressions (`%NAME%`) the host resolves from app settings, e.g. the probe's schedule.

    (`functions` holds what `app.get_functions()` returned: it may run once per process.)"""
    expressions = {
        name
        for function in functions._functions.values()
        for name in re.findall(r"%([A-Za-z0-9_]+)%", function.get_function_json())
    }
    assert expressions, "the probe timer's schedule is one"
    assert expressions <= {setting["name"] for setting in app_settings()}


def test_required_settings_are_set():
    required = {name.upper() for name, field in BridgeSettings.model_fields.items() if field.is_required()}
    required |= {EnvVar.TOKEN_SCOPE}  # the default SCHEDULER_AUTH, managed_identity, needs it
    assert required <= {setting["name"] for setting in app_settings()}


def test_parameter_choices_are_exactly_what_the_bridge_accepts():
    assert allowed_values(MAIN, "schedulerAuth") == list(get_args(AuthMode))
    health_levels = get_args(BridgeSettings.model_fields["health_auth_level"].annotation)
    assert allowed_values(MAIN, "healthAuthLevel") == list(health_levels)
    main = parse(MAIN)["parameters"]
    assert (
        main["healthProbeSchedule"]["default"] == BridgeSettings.model_fields["health_probe_schedule"].default
    )
    assert main["schedulerAuth"]["default"] == BridgeSettings.model_fields["scheduler_auth"].default
    assert main["healthAuthLevel"]["default"] == BridgeSettings.model_fields["health_auth_level"].default


def deployed_values() -> list[dict[str, str]]:
    """The app settings as one deployment would set them (one environment per conditional branch)."""
    main = parse(MAIN)
    module_params = resource_body(main["modules"]["app"])["params"]
    app_params = parse(FUNCTION_APP)["parameters"]

    def from_main(parameter: str) -> str:
        if parameter in SAMPLE_PARAMETERS:
            return SAMPLE_PARAMETERS[parameter]
        given = module_params[parameter]
        if given in main["parameters"]:
            return str(main["parameters"][given]["default"])
        return str(main["variables"][given]["value"])

    choices: dict[str, list[str]] = {}
    app_variables = parse(FUNCTION_APP)["variables"]
    for setting in app_settings():
        name, value = setting["name"], setting["value"]
        if name == EnvVar.MCP_UPSTREAMS:  # upstreamNames, with the default otherUpstreams ([])
            assert value in app_variables, value
            choices[name] = ["scheduler"]
        elif isinstance(value, str):
            choices[name] = [from_main(value) if value in app_params else value]
        elif name in SAMPLE_EXPRESSIONS:
            choices[name] = [SAMPLE_EXPRESSIONS[name]]
        else:
            operands = value["operator"]["operands"]
            assert value["operator"]["type"] == "conditional", (name, value)
            choices[name] = [operands["true_value"], operands["false_value"]]
    names = list(choices)
    return [
        dict(zip(names, combination, strict=True)) for combination in itertools.product(*choices.values())
    ]


@pytest.mark.parametrize(
    "environ", deployed_values(), ids=lambda env: f"private={env[EnvVar.ALLOW_PRIVATE_ENDPOINTS]}"
)
def test_the_deployed_settings_pass_the_bridges_validation(environ: dict[str, Any]):
    settings = parse_settings(environ)
    assert settings.scheduler_endpoints == SAMPLE_PARAMETERS["schedulerEndpoints"].split(",")
    assert settings.scheduler_auth == "managed_identity"
    assert settings.scheduler_token_scope == SAMPLE_PARAMETERS["schedulerTokenScope"]
    assert settings.storage_blob_url == SAMPLE_EXPRESSIONS["AzureWebJobsStorage__blobServiceUri"]
    assert settings.has_shared_storage, "the health snapshot is shared through the host's storage"
    assert settings.secrets_vault_url == SAMPLE_PARAMETERS["keyVaultUri"].rstrip("/")
    assert settings.health_snapshot_container == "scheduler-bridge"
    assert settings.scheduler_allow_private_endpoints is (
        environ["SCHEDULER_ALLOW_PRIVATE_ENDPOINTS"] == "true"
    )
    assert settings.applicationinsights_connection_string is not None


def test_private_endpoints_are_allowed_exactly_when_the_app_is_in_a_virtual_network():
    [private] = [s["value"] for s in app_settings() if s["name"] == EnvVar.ALLOW_PRIVATE_ENDPOINTS]
    operator = private["operator"]
    assert operator["operands"]["condition"] == {
        "function": {"type": "empty", "parameters": {"item_to_test": "subnetId"}}
    }
    assert (operator["operands"]["true_value"], operator["operands"]["false_value"]) == ("false", "true")
    [(_, site)] = [
        (name, resource_body(resource))
        for name, resource in parse(FUNCTION_APP)["resources"].items()
        if resource["type"] == "Microsoft.Web/sites"
    ]
    assert "subnetId" in json.dumps(site["properties"]["virtualNetworkSubnetId"])


ROOMS = {
    "name": "Rooms",
    "endpoints": "https://rooms-east.example.com/mcp,https://rooms-west.example.com/mcp",
    "auth": "api_key",
    "tokenScope": "",
    "allowedTools": "bookRoom,listRooms",
    "toolRoles": "listRooms:Rooms.Read,*:Rooms.Book",
    "keyCallerRoles": "Rooms.Read",
}
DESKS = {**ROOMS, "name": "desks", "auth": "managed_identity", "tokenScope": "api://desks/.default"}


@pytest.mark.parametrize("private", [False, True], ids=["public", "private"])
def test_several_upstreams_deploy_settings_the_bridge_reads_for_each(private: bool):
    """`otherUpstreams` as a deployment would give it: two servers beside the Scheduler, one with an
    API key from Key Vault (secret names of its own), one with a managed identity token."""
    environ = next(
        env for env in deployed_values() if (env[EnvVar.ALLOW_PRIVATE_ENDPOINTS] == "true") is private
    )
    upstreams = [ROOMS, DESKS]
    # MCP_UPSTREAMS: join(concat(['scheduler'], map(otherUpstreams, upstream => toLower(upstream.name))), ',')
    environ = {**environ, "MCP_UPSTREAMS": ",".join(["scheduler", *(u["name"].lower() for u in upstreams)])}
    for upstream in upstreams:
        extra = upstream_settings(upstream, private=private)
        assert (
            unknown_settings([name for name in extra if not name.startswith(upstream["name"].upper())]) == []
        )
        environ.update(extra)
    settings = parse_settings(environ)
    assert list(settings.upstreams) == ["scheduler", "rooms", "desks"]
    rooms, desks = settings.upstreams["rooms"], settings.upstreams["desks"]
    assert rooms.scheduler_endpoints == ROOMS["endpoints"].split(",")
    assert (rooms.scheduler_auth, rooms.secrets_vault_url) == (
        "api_key",
        SAMPLE_PARAMETERS["keyVaultUri"].rstrip("/"),
    )
    assert (rooms.keyvault_client_id_secret, rooms.keyvault_api_key_secret) == (
        "ROOMS-CLIENT-ID",
        "ROOMS-API-KEY",
    )
    assert rooms.tool_roles is not None and rooms.key_caller_roles == {"Rooms.Read"}
    assert (desks.scheduler_auth, desks.scheduler_token_scope) == ("managed_identity", "api://desks/.default")
    # The network rule covers every upstream: private endpoints allowed for each exactly when in a VNet.
    assert {u.scheduler_allow_private_endpoints for u in settings.upstreams.values()} == {private}


def test_the_upstream_names_setting_is_set_from_the_parameter():
    [names] = [s["value"] for s in app_settings() if s["name"] == EnvVar.MCP_UPSTREAMS]
    assert names == "upstreamNames"
    variables = parse(FUNCTION_APP)["variables"]
    assert "upstreamNameList" in json.dumps(variables["upstreamNames"])
    assert variables["upstreamNameList"]["value"]["loop_type"]["detail"]["array_name"] == "otherUpstreams"
    main = parse(MAIN)
    assert main["parameters"]["otherUpstreams"]["default"] == []
    assert resource_body(main["modules"]["app"])["params"]["otherUpstreams"] == "otherUpstreams"


def test_the_key_vault_grant_covers_every_upstreams_secrets():
    """The app reads `<NAME>-CLIENT-ID` / `<NAME>-API-KEY` for each upstream from the one vault:
    its Key Vault Secrets User grant is on the vault, not on a secret, so it covers every one."""
    from .templates import ROLES, resources

    grants = [body for _, body in resources(ROLES, "Microsoft.Authorization/roleAssignments")]
    secrets_user = [g for g in grants if "keyVaultSecretsUser" in json.dumps(g)]
    assert len(secrets_user) == 1
    assert secrets_user[0]["scope"] == "vault"
