// The Azure Bot resource (kind azurebot) with the Microsoft Teams channel. Its identity is the user-assigned
// managed identity: Teams sends activities to the messaging endpoint signed for that app id, and the bot
// replies with tokens of that identity.

@description('Bot handle (unique in Azure)')
param name string

@description('Name shown in the Azure portal')
param displayName string

@description('https://<web app>/api/messages')
param endpoint string

@description('Client id of the managed identity (the bot\'s Microsoft App ID)')
param identityClientId string

@description('Resource id of the managed identity')
param identityId string

@description('Entra tenant of the managed identity')
param tenantId string

@allowed([
  'F0'
  'S1'
])
@description('Pricing tier of the Azure Bot resource')
param sku string = 'S1'

resource bot 'Microsoft.BotService/botServices@2022-09-15' = {
  name: name
  location: 'global'
  kind: 'azurebot'
  sku: {
    name: sku
  }
  properties: {
    displayName: displayName
    endpoint: endpoint
    msaAppId: identityClientId
    msaAppType: 'UserAssignedMSI'
    msaAppMSIResourceId: identityId
    msaAppTenantId: tenantId
  }
}

resource teams 'Microsoft.BotService/botServices/channels@2022-09-15' = {
  parent: bot
  name: 'MsTeamsChannel'
  location: 'global'
  properties: {
    channelName: 'MsTeamsChannel'
    properties: {
      isEnabled: true
    }
  }
}

output name string = bot.name
