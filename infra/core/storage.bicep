// The app's storage account: the Functions host (AzureWebJobsStorage), the Flex Consumption
// deployment container and the bridge's health snapshot. Shared keys are off, so every client
// (host, platform, bridge) authenticates with the app's managed identity.
param location string
param tags object
param storageAccountName string

@description('Blob containers to create: the deployment package container and the health snapshot container.')
param containerNames array

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  #checkov:skip=CKV_AZURE_35:The Functions host and the Flex Consumption platform reach the account over its public endpoint and have no fixed addresses to allow; shared keys are off, so every request needs an Entra token with a data role
  #checkov:skip=CKV_AZURE_59:Same reason as CKV_AZURE_35: public endpoint, identity-only access (allowSharedKeyAccess false, no anonymous blob access)
  #checkov:skip=CKV_AZURE_206:Zone-redundant, not geo-redundant: host coordination blobs, a redeployable package and short-lived health and idempotency records have no use in another region, where no instance of this app runs
  #checkov:skip=CKV_AZURE_43:The name is computed in main.bicep ('st' + uniqueString, 15 lower-case alphanumerics), which checkov cannot evaluate across modules
  name: storageAccountName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_ZRS'
  }
  properties: {
    accessTier: 'Hot'
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      services: {
        blob: {
          enabled: true
        }
        table: {
          enabled: true
        }
      }
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource containers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [
  for containerName in containerNames: {
    parent: blobService
    name: containerName
    properties: {
      publicAccess: 'None'
    }
  }
]

output name string = storage.name
output blobEndpoint string = storage.properties.primaryEndpoints.blob
output tableEndpoint string = storage.properties.primaryEndpoints.table
