// The vault for the Scheduler's API-key credentials (SCHEDULER-CLIENT-ID, SCHEDULER-API-KEY) and
// any @Microsoft.KeyVault(...) reference in the app settings. RBAC only (no access policies); the
// app reads with Key Vault Secrets User (roles.bicep). Purge protection means a deleted vault's
// name stays reserved for the retention period (docs/deployment.md, "Tearing down").
param location string
param tags object
param keyVaultName string

@minValue(7)
@maxValue(90)
param softDeleteRetentionInDays int = 90

// The app has no fixed outbound address to allow (Flex Consumption) and, without vnetEnabled, no
// private path: it reaches the vault over the public endpoint, where Entra RBAC decides every read.
resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  #checkov:skip=CKV_AZURE_109:Flex Consumption has no fixed outbound addresses for a firewall rule; access is RBAC-only (Key Vault Secrets User for the app)
  #checkov:skip=CKV_AZURE_189:The app and the person setting the Scheduler secrets reach the vault over its public endpoint; Entra RBAC decides every request
  name: keyVaultName
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: softDeleteRetentionInDays
    enablePurgeProtection: true
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

output name string = vault.name
output uri string = vault.properties.vaultUri
