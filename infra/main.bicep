// The Scheduler Bridge in Azure: what `azd up` provisions (docs/deployment.md).
//
// One resource group holding a Flex Consumption function app (Linux, Python 3.11) with a
// system-assigned identity, its storage account (shared keys off), Application Insights on a Log
// Analytics workspace (Entra ingestion only), a Key Vault in RBAC mode, the role assignments the
// bridge needs, the alerts on what the bridge emits and, optionally, a virtual network for
// Schedulers behind private endpoints.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; it seeds the names of every resource.')
param environmentName string

@minLength(1)
@description('Azure region for every resource (one that offers the Flex Consumption plan).')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@minLength(1)
@description('The Scheduler MCP endpoints in priority order, comma-separated https URLs (SCHEDULER_ENDPOINTS).')
param schedulerEndpoints string

@allowed([
  'managed_identity'
  'api_key'
  'none'
])
@description('How the bridge authenticates to the Scheduler (SCHEDULER_AUTH).')
param schedulerAuth string = 'managed_identity'

@description('Scope of the token the app identity requests, e.g. api://<scheduler-app-id>/.default (SCHEDULER_TOKEN_SCOPE); required for managed_identity.')
param schedulerTokenScope string = ''

@description('MCP servers beside the Scheduler, each {name, endpoints, auth, tokenScope, allowedTools, toolRoles, keyCallerRoles} (every field present, empty strings for none); name: a letter, then letters or digits. Becomes MCP_UPSTREAMS and <NAME>_* settings (docs/several-servers.md).')
param otherUpstreams array = []

@description('Comma-separated tool names the bridge may call; empty allows every tool (SCHEDULER_ALLOWED_TOOLS).')
param schedulerAllowedTools string = ''

@description('Comma-separated tool:role pairs, * for any tool; empty: every caller may call every allowed tool (SCHEDULER_TOOL_ROLES).')
param schedulerToolRoles string = ''

@description('Roles a caller holding only a function key has, once schedulerToolRoles is set (SCHEDULER_KEY_CALLER_ROLES).')
param schedulerKeyCallerRoles string = ''

@description('Refuse argument names a tool does not declare (SCHEDULER_STRICT_ARGUMENTS).')
param schedulerStrictArguments bool = true

@description('How long an Idempotency-Key answer is kept, in seconds, at most 30 days (IDEMPOTENCY_TTL_SECONDS).')
param idempotencyTtlSeconds string = '86400'

@description('How long a long-running operation is kept, in seconds, 60 s to 30 days (OPERATIONS_RETENTION_SECONDS).')
param operationsRetentionSeconds string = '86400'

@description('Live long-running operations one caller may have (OPERATIONS_MAX_PER_CALLER).')
param operationsMaxPerCaller string = '20'

@description('HTTP streams: Accept: text/event-stream streams tool progress (docs/streaming.md). Sets HTTP_STREAMS and PYTHON_ENABLE_INIT_INDEXING.')
param httpStreams bool = true

@description('NCRONTAB schedule (six fields, seconds first) of the health probe timer (HEALTH_PROBE_SCHEDULE).')
param healthProbeSchedule string = '*/30 * * * * *'

@allowed([
  'anonymous'
  'function'
  'admin'
])
@description('Authorization level of GET /api/health (HEALTH_AUTH_LEVEL).')
param healthAuthLevel string = 'function'

@minValue(0)
@maxValue(20)
@description('Always-ready instances for the HTTP functions: 0 scales to zero (cold starts), 1 or more keeps that many warm and billed.')
param alwaysReadyInstances int = 0

@minValue(1)
@maxValue(1000)
@description('Upper bound of instances the plan may scale out to.')
param maximumInstanceCount int = 100

@allowed([
  512
  2048
  4096
])
@description('Memory of each instance in MB.')
param instanceMemoryMB int = 2048

@minValue(1)
@maxValue(1000)
@description('Most HTTP requests one instance is given at once (Flex Consumption scaleAndConcurrency.triggers.http.perInstanceConcurrency); the platform adds instances for the rest. The default is the knee `make bench` measured for one worker process on a 2048 MB instance (docs/deployment.md): raise it with instanceMemoryMB 4096, lower it for 512.')
param httpPerInstanceConcurrency int = 4

@description('Spread the plan\'s instances over availability zones; only in regions that offer it for Flex Consumption.')
param zoneRedundant bool = false

@description('Integrate the app with a virtual network, for Schedulers reachable only on private addresses; turns SCHEDULER_ALLOW_PRIVATE_ENDPOINTS on.')
param vnetEnabled bool = false

@description('With vnetEnabled: an existing subnet (delegated to Microsoft.App/environments) to integrate with, e.g. one peered with the Scheduler\'s network. Empty creates a new virtual network.')
param existingSubnetId string = ''

@description('Address space of the virtual network created when vnetEnabled and no existingSubnetId is given.')
param vnetAddressPrefix string = '10.90.0.0/16'

@description('Address range of the app subnet in that virtual network.')
param appSubnetPrefix string = '10.90.0.0/24'

@description('Object id of the user running azd; granted Key Vault Secrets Officer to set the Scheduler secrets. Empty grants nothing.')
param principalId string = ''

@description('E-mail address that receives the alerts; empty creates the alert rules without a notification.')
param alertEmail string = ''

@minValue(1)
@description('Failovers per hour (calls moved to another endpoint plus active-endpoint changes) above which an alert fires.')
param failoversPerHourThreshold int = 10

@minValue(0)
@description('Failed managed-identity token refreshes within 15 minutes above which an alert fires.')
param tokenRefreshFailureThreshold int = 0

@minValue(1)
@maxValue(100)
@description('Percentage of requests answered with a 5xx within 15 minutes above which an alert fires.')
param http5xxPercentThreshold int = 5

@minValue(1)
@description('Fewer requests than this in the window never raise the 5xx alert.')
param http5xxMinimumRequests int = 20

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}
var functionAppName = 'func-${resourceToken}'
var deploymentContainerName = 'app-package-${take(functionAppName, 32)}-${take(resourceToken, 7)}'
var healthSnapshotContainerName = 'scheduler-bridge'

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module monitoring 'core/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    location: location
    tags: tags
    workspaceName: 'log-${resourceToken}'
    applicationInsightsName: 'appi-${resourceToken}'
  }
}

module network 'core/network.bicep' = if (vnetEnabled && empty(existingSubnetId)) {
  name: 'network'
  scope: rg
  params: {
    location: location
    tags: tags
    vnetName: 'vnet-${resourceToken}'
    addressPrefix: vnetAddressPrefix
    appSubnetPrefix: appSubnetPrefix
  }
}

module storage 'core/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    location: location
    tags: tags
    storageAccountName: 'st${resourceToken}'
    containerNames: [
      deploymentContainerName
      healthSnapshotContainerName
    ]
  }
}

module vault 'core/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    location: location
    tags: tags
    keyVaultName: 'kv-${resourceToken}'
  }
}

module app 'core/functionapp.bicep' = {
  name: 'functionapp'
  scope: rg
  params: {
    location: location
    tags: tags
    functionAppName: functionAppName
    planName: 'plan-${resourceToken}'
    storageAccountName: storage.outputs.name
    deploymentContainerName: deploymentContainerName
    healthSnapshotContainerName: healthSnapshotContainerName
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    keyVaultUri: vault.outputs.uri
    schedulerEndpoints: schedulerEndpoints
    otherUpstreams: otherUpstreams
    schedulerAuth: schedulerAuth
    schedulerTokenScope: schedulerTokenScope
    schedulerAllowedTools: schedulerAllowedTools
    schedulerToolRoles: schedulerToolRoles
    schedulerKeyCallerRoles: schedulerKeyCallerRoles
    schedulerStrictArguments: schedulerStrictArguments
    idempotencyTtlSeconds: idempotencyTtlSeconds
    operationsRetentionSeconds: operationsRetentionSeconds
    operationsMaxPerCaller: operationsMaxPerCaller
    httpStreams: httpStreams
    healthProbeSchedule: healthProbeSchedule
    healthAuthLevel: healthAuthLevel
    alwaysReadyInstances: alwaysReadyInstances
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    httpPerInstanceConcurrency: httpPerInstanceConcurrency
    zoneRedundant: zoneRedundant
    subnetId: vnetEnabled ? (empty(existingSubnetId) ? network.outputs.appSubnetId : existingSubnetId) : ''
  }
}

module roles 'core/roles.bicep' = {
  name: 'roles'
  scope: rg
  params: {
    appPrincipalId: app.outputs.principalId
    userPrincipalId: principalId
    storageAccountName: storage.outputs.name
    keyVaultName: vault.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
  }
}

module alerts 'core/alerts.bicep' = {
  name: 'alerts'
  scope: rg
  params: {
    location: location
    tags: tags
    namePrefix: functionAppName
    workspaceId: monitoring.outputs.workspaceId
    alertEmail: alertEmail
    failoversPerHourThreshold: failoversPerHourThreshold
    tokenRefreshFailureThreshold: tokenRefreshFailureThreshold
    http5xxPercentThreshold: http5xxPercentThreshold
    http5xxMinimumRequests: http5xxMinimumRequests
  }
}

// azd reads these into the environment (azd env get-values); the Scheduler's owners need the
// principal id to grant the app role behind SCHEDULER_TOKEN_SCOPE.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = app.outputs.name
output AZURE_FUNCTION_APP_URL string = app.outputs.url
output AZURE_FUNCTION_APP_PRINCIPAL_ID string = app.outputs.principalId
output AZURE_KEY_VAULT_NAME string = vault.outputs.name
output AZURE_KEY_VAULT_URI string = vault.outputs.uri
output AZURE_LOG_ANALYTICS_WORKSPACE_ID string = monitoring.outputs.workspaceId
output APPLICATIONINSIGHTS_NAME string = monitoring.outputs.applicationInsightsName
