// The Azure Bot resource (kind azurebot) with the Microsoft Teams channel and, when the agency's website
// origins are given, the Direct Line channel its Web Chat page uses. Its identity is the user-assigned
// managed identity: Teams sends activities to the messaging endpoint signed for that app id, and the bot
// replies with tokens of that identity.

@description('Bot handle (unique in Azure)')
param name string

@allowed([
  'global'
  'westeurope'
])
@description('Data residency of the bot resource: global, or regional (Europe: westeurope). Fixed at creation.')
param location string = 'global'

@description('Origins of the agency\'s website allowed to use Direct Line tokens; empty: no Direct Line channel')
param webOrigins array = []

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
  location: location
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
  location: location
  properties: {
    channelName: 'MsTeamsChannel'
    properties: {
      isEnabled: true
    }
  }
}

// The website's channel: one Direct Line site, protocol v3 only, with enhanced authentication so that Direct
// Line accepts its tokens only from the trusted origins and replaces any user id a page sends with the token's
// own (the bot's token endpoint makes `dl_` ids). Users cannot upload files (the bot takes none from the web).
// Properties: https://learn.microsoft.com/azure/templates/microsoft.botservice/2022-09-15/botservices/channels
// (DirectLineChannel, DirectLineSite). The site's keys are returned only by the listChannelWithKeys action,
// never by a deployment: the operator copies one into Key Vault (deployment/README.md, "Install on Azure").
resource directLine 'Microsoft.BotService/botServices/channels@2022-09-15' = if (!empty(webOrigins)) {
  parent: bot
  name: 'DirectLineChannel'
  location: location
  properties: {
    channelName: 'DirectLineChannel'
    properties: {
      sites: [
        {
          siteName: 'website'
          isEnabled: true
          isV1Enabled: false
          isV3Enabled: true
          isSecureSiteEnabled: true
          trustedOrigins: webOrigins
          isBlockUserUploadEnabled: true
        }
      ]
    }
  }
}

output name string = bot.name
@description('Direct Line site holding the key to copy into Key Vault (empty when the channel is off)')
output directLineSiteName string = empty(webOrigins) ? '' : 'website'
