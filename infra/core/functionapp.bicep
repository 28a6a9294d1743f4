// The bridge: a Flex Consumption function app (Linux, Python 3.11) with a system-assigned identity.
// Every app setting it needs is here, named exactly as mcp_bridge/settings.py reads it
// (tests/infra/test_app_settings.py holds the two side by side). Runtime and scale settings that the
// older plans kept in app settings (FUNCTIONS_WORKER_RUNTIME, ...) live in functionAppConfig.
param location string
param tags object
param functionAppName string
param planName string
param storageAccountName string
param deploymentContainerName string
param healthSnapshotContainerName string
param applicationInsightsName string
param keyVaultUri string

@description('SCHEDULER_ENDPOINTS: comma-separated, priority order.')
param schedulerEndpoints string
param schedulerAuth string
param schedulerTokenScope string
param schedulerAllowedTools string
param schedulerToolRoles string
param schedulerKeyCallerRoles string
param schedulerStrictArguments bool
param idempotencyTtlSeconds string
param operationsRetentionSeconds string
param operationsMaxPerCaller string
param httpStreams bool
param healthProbeSchedule string
param healthAuthLevel string
param alwaysReadyInstances int
param maximumInstanceCount int
param instanceMemoryMB int

@description('scaleAndConcurrency.triggers.http.perInstanceConcurrency: HTTP requests one instance takes at once.')
param httpPerInstanceConcurrency int

@description('Spread instances over availability zones (regions that offer it for Flex Consumption).')
param zoneRedundant bool

@description('Subnet to integrate with (delegated to Microsoft.App/environments); empty for none.')
param subnetId string

@description('MCP servers beside the Scheduler (docs/several-servers.md), each {name, endpoints, auth, tokenScope, allowedTools, toolRoles, keyCallerRoles}; every field present, empty strings for none.')
param otherUpstreams array = []

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  #checkov:skip=CKV_AZURE_225:Zone redundancy is the zoneRedundant parameter (Flex Consumption offers it in some regions only); off by default
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
    zoneRedundant: zoneRedundant
  }
}

// Named upstreams (docs/several-servers.md): MCP_UPSTREAMS lists them, and each one's settings are
// the Scheduler's with its name in place of SCHEDULER. Its API-key secrets live in the same vault
// (one Key Vault Secrets User grant covers them all, roles.bicep), and a virtual network allows
// private endpoints for every upstream alike, as it does for the Scheduler's.
var upstreamNameList = [for upstream in otherUpstreams: toLower(upstream.name)]
var upstreamNames = join(concat(['scheduler'], upstreamNameList), ',')
var upstreamEndpoints = [for upstream in otherUpstreams: {
  name: '${toUpper(upstream.name)}_ENDPOINTS'
  value: upstream.endpoints
}]
var upstreamAuth = [for upstream in otherUpstreams: {
  name: '${toUpper(upstream.name)}_AUTH'
  value: upstream.auth
}]
var upstreamTokenScope = [for upstream in otherUpstreams: {
  name: '${toUpper(upstream.name)}_TOKEN_SCOPE'
  value: upstream.tokenScope
}]
var upstreamAllowedTools = [for upstream in otherUpstreams: {
  name: '${toUpper(upstream.name)}_ALLOWED_TOOLS'
  value: upstream.allowedTools
}]
var upstreamToolRoles = [for upstream in otherUpstreams: {
  name: '${toUpper(upstream.name)}_TOOL_ROLES'
  value: upstream.toolRoles
}]
var upstreamKeyCallerRoles = [for upstream in otherUpstreams: {
  name: '${toUpper(upstream.name)}_KEY_CALLER_ROLES'
  value: upstream.keyCallerRoles
}]
var upstreamAllowPrivateEndpoints = [for upstream in otherUpstreams: {
  name: '${toUpper(upstream.name)}_ALLOW_PRIVATE_ENDPOINTS'
  value: empty(subnetId) ? 'false' : 'true'
}]
var upstreamKeyvaultClientIdSecret = [for upstream in otherUpstreams: {
  name: '${toUpper(upstream.name)}_KEYVAULT_CLIENT_ID_SECRET'
  value: '${toUpper(upstream.name)}-CLIENT-ID'
}]
var upstreamKeyvaultApiKeySecret = [for upstream in otherUpstreams: {
  name: '${toUpper(upstream.name)}_KEYVAULT_API_KEY_SECRET'
  value: '${toUpper(upstream.name)}-API-KEY'
}]

// Every upstream's settings, setting by setting (one loop per setting name).
var upstreamSettings = concat(upstreamEndpoints, upstreamAuth, upstreamTokenScope, upstreamAllowedTools, upstreamToolRoles, upstreamKeyCallerRoles, upstreamAllowPrivateEndpoints, upstreamKeyvaultClientIdSecret, upstreamKeyvaultApiKeySecret)

var appSettings = [
  // Functions host storage through the app identity: blob for coordination, keys and timer locks,
  // table for the host's diagnostic events. No queue: the bridge has no queue or blob triggers.
  {
    name: 'AzureWebJobsStorage__credential'
    value: 'managedidentity'
  }
  {
    name: 'AzureWebJobsStorage__blobServiceUri'
    value: storage.properties.primaryEndpoints.blob
  }
  {
    name: 'AzureWebJobsStorage__tableServiceUri'
    value: storage.properties.primaryEndpoints.table
  }
  // Telemetry: the Python worker configures Azure Monitor and exports the mcp_bridge logger; the
  // exporter authenticates with the system-assigned identity (the resource refuses keys).
  {
    name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
    value: applicationInsights.properties.ConnectionString
  }
  {
    name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
    value: 'Authorization=AAD'
  }
  {
    name: 'PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY'
    value: 'true'
  }
  {
    name: 'PYTHON_APPLICATIONINSIGHTS_LOGGER_NAME'
    value: 'mcp_bridge'
  }
  // The Scheduler, the default upstream, and the names of the others
  {
    name: 'MCP_UPSTREAMS'
    value: upstreamNames
  }
  {
    name: 'SCHEDULER_ENDPOINTS'
    value: schedulerEndpoints
  }
  {
    name: 'SCHEDULER_AUTH'
    value: schedulerAuth
  }
  {
    name: 'SCHEDULER_TOKEN_SCOPE'
    value: schedulerTokenScope
  }
  {
    name: 'SCHEDULER_ALLOWED_TOOLS'
    value: schedulerAllowedTools
  }
  {
    name: 'SCHEDULER_ALLOW_PRIVATE_ENDPOINTS'
    value: empty(subnetId) ? 'false' : 'true'
  }
  {
    name: 'SCHEDULER_STRICT_ARGUMENTS'
    value: schedulerStrictArguments ? 'true' : 'false'
  }
  // Callers (docs/securing-callers.md): roles per tool, and what a function-key caller holds
  {
    name: 'SCHEDULER_TOOL_ROLES'
    value: schedulerToolRoles
  }
  {
    name: 'SCHEDULER_KEY_CALLER_ROLES'
    value: schedulerKeyCallerRoles
  }
  // Idempotency-Key answers live in AzureWebJobsStorage (docs/calling-from-code.md)
  {
    name: 'IDEMPOTENCY_TTL_SECONDS'
    value: idempotencyTtlSeconds
  }
  // Long-running operations, kept in the same storage (docs/long-running.md)
  {
    name: 'OPERATIONS_RETENTION_SECONDS'
    value: operationsRetentionSeconds
  }
  {
    name: 'OPERATIONS_MAX_PER_CALLER'
    value: operationsMaxPerCaller
  }
  // HTTP streams (docs/streaming.md): the worker serves FastAPI requests only with init indexing on,
  // so the two go together (the bridge stays classic if HTTP_STREAMS comes without it).
  {
    name: 'HTTP_STREAMS'
    value: httpStreams ? 'true' : 'false'
  }
  {
    name: 'PYTHON_ENABLE_INIT_INDEXING'
    value: httpStreams ? '1' : '0'
  }
  // Key Vault: the API-key credentials for SCHEDULER_AUTH=api_key
  {
    name: 'KEYVAULT_URI'
    value: keyVaultUri
  }
  {
    name: 'KEYVAULT_CLIENT_ID_SECRET'
    value: 'SCHEDULER-CLIENT-ID'
  }
  {
    name: 'KEYVAULT_API_KEY_SECRET'
    value: 'SCHEDULER-API-KEY'
  }
  // Health: the probe timer's schedule is a binding expression (%HEALTH_PROBE_SCHEDULE%), so the
  // host cannot index the timer without it.
  {
    name: 'HEALTH_PROBE_SCHEDULE'
    value: healthProbeSchedule
  }
  {
    name: 'HEALTH_AUTH_LEVEL'
    value: healthAuthLevel
  }
  {
    name: 'HEALTH_SNAPSHOT_CONTAINER'
    value: healthSnapshotContainerName
  }
]

// Warm instances for the per-function scale group of the HTTP triggers ("http").
var httpAlwaysReady = [
  {
    name: 'http'
    instanceCount: alwaysReadyInstances
  }
]

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  #checkov:skip=CKV_AZURE_222:The bridge is the HTTP front door for its callers; each call needs a function key (or HEALTH_AUTH_LEVEL for /api/health)
  #checkov:skip=CKV_AZURE_17:Callers authenticate with function keys; client certificates would require every caller to hold one
  #checkov:skip=CKV_AZURE_212:Flex Consumption scales per function group; warm instances are the alwaysReadyInstances parameter (0 by default, pay per use)
  #checkov:skip=CKV_AZURE_213:/api/health needs a function key by default, which the platform probe does not send; the probe timer and the alert rules watch endpoint health instead
  name: functionAppName
  location: location
  tags: union(tags, {
    'azd-service-name': 'api'
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    virtualNetworkSubnetId: empty(subnetId) ? null : subnetId
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'SystemAssignedIdentity'
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
        alwaysReady: alwaysReadyInstances > 0 ? httpAlwaysReady : []
        triggers: {
          http: {
            perInstanceConcurrency: httpPerInstanceConcurrency
          }
        }
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      vnetRouteAllEnabled: !empty(subnetId)
      appSettings: concat(appSettings, upstreamSettings)
    }
  }
}

// Publishing with a user name and password (FTP, and the SCM site's basic auth) is off: azd and
// the az CLI deploy with Entra tokens.
resource ftpCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'scm'
  properties: {
    allow: false
  }
}

output name string = functionApp.name
output url string = 'https://${functionApp.properties.defaultHostName}'
output principalId string = functionApp.identity.principalId
