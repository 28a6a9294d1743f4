// A virtual network for the app's outbound traffic, created only when vnetEnabled and no existing
// subnet is given. Flex Consumption integrates with a subnet delegated to Microsoft.App/environments.
// Reaching a Scheduler behind a private endpoint also takes peering (or the Scheduler's private
// endpoint in this network) and its private DNS zone linked here: both belong to the Scheduler's
// owners and are described in docs/deployment.md.
param location string
param tags object
param vnetName string
param addressPrefix string
param appSubnetPrefix string

var appSubnetName = 'app'

resource appSubnetNsg 'Microsoft.Network/networkSecurityGroups@2024-05-01' = {
  name: '${vnetName}-${appSubnetName}-nsg'
  location: location
  tags: tags
  properties: {
    securityRules: []
  }
}

resource vnet 'Microsoft.Network/virtualNetworks@2024-05-01' = {
  name: vnetName
  location: location
  tags: tags
  properties: {
    addressSpace: {
      addressPrefixes: [
        addressPrefix
      ]
    }
    subnets: [
      {
        name: appSubnetName
        properties: {
          addressPrefix: appSubnetPrefix
          networkSecurityGroup: {
            id: appSubnetNsg.id
          }
          delegations: [
            {
              name: 'flex-consumption'
              properties: {
                serviceName: 'Microsoft.App/environments'
              }
            }
          ]
        }
      }
    ]
  }
}

output appSubnetId string = '${vnet.id}/subnets/${appSubnetName}'
