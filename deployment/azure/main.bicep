// Guichet for one agency on Azure: a user-assigned managed identity as the bot's identity, the Azure Bot
// resource with the Teams channel (and the Direct Line channel of the agency's website when its origins are
// given), Container Apps (web, worker, migration job), Azure Database for PostgreSQL
// flexible server, Key Vault for the secrets, Log Analytics and Application Insights.
//
//   az deployment group create --resource-group <group> --parameters deployment/azure/example-be.bicepparam
//
// Step by step, with what to do before and after: deployment/README.md ("Azure").

targetScope = 'resourceGroup'

@description('The agency\'s folder under deployment/agencies/ (its file must be in the image)')
@maxLength(14)
param agencyId string

@description('Azure region of the resources (the Azure Bot resource itself is global)')
param location string = resourceGroup().location

@description('The image to run, e.g. myregistry.azurecr.io/guichet:1.0.0')
param image string

@description('Azure Container Registry in this resource group that holds the image (the managed identity gets AcrPull on it); empty for a public image')
param registryName string = ''

@description('Entra tenant of the app registration that calls Microsoft Graph')
param graphTenantId string = tenant().tenantId

@description('Application (client) id of the app registration that calls Microsoft Graph')
param graphClientId string

@secure()
@description('Client secret of that app registration')
param graphClientSecret string

@secure()
@minLength(32)
@description('Bearer token that GET /metrics requires (production refuses fewer than 32 characters)')
param metricsToken string

@description('The Teams app\'s id in the organisation\'s catalog (optional: lets the bot install itself for counselors)')
param teamsAppId string = ''

@description('PostgreSQL administrator login (the bot connects with it)')
param postgresAdminLogin string = 'guichet'

@secure()
@description('PostgreSQL administrator password')
param postgresAdminPassword string

@description('PostgreSQL compute size')
param postgresSkuName string = 'Standard_B2s'

@allowed([
  'Burstable'
  'GeneralPurpose'
  'MemoryOptimized'
])
param postgresSkuTier string = 'Burstable'

@minValue(7)
@maxValue(35)
@description('Days of point-in-time restore')
param backupRetentionDays int = 35

@description('Keep a copy of the backups in the paired region (chosen at creation)')
param geoRedundantBackup bool = false

@minValue(2)
@description('Web replicas always running (two: one can restart while the other answers)')
param webMinReplicas int = 2

@description('Most web replicas under load')
param webMaxReplicas int = 4

@minValue(1)
@description('Worker replicas; they share Teams\' message rate between them')
param workerReplicas int = 1

@description('Name of the Azure Bot resource in the portal')
param botDisplayName string = 'Guichet'

@allowed([
  'global'
  'westeurope'
])
@description('Data residency of the Azure Bot resource: global, or westeurope (personal data kept in Europe). Fixed when the bot is created')
param botLocation string = 'global'

// --- The agency's website: Web Chat over Direct Line (deployment/README.md, "The agency's website: Web Chat")

@description('Origins of the agency\'s pages that embed the Web Chat, e.g. [\'https://www.agency.example\']: Direct Line\'s trusted origins and GUICHET_WEB_ORIGINS. Empty: no Direct Line channel, Teams only')
param webOrigins array = []

@secure()
@description('Key of the Direct Line site, copied from the channel after the first deployment (empty until then: the token endpoint answers 503)')
param directLineSecret string = ''

@secure()
@description('Secret signing the manage links in e-mails, 32+ characters (openssl rand -hex 32); empty: no manage links')
param manageLinkSecret string = ''

@description('The agency\'s Web Chat page that manage links open, e.g. https://www.agency.example/chat')
param manageLinkUrl string = ''

@minValue(1)
@description('Direct Line tokens one visitor may ask a minute (the web app reads the visitor\'s address from the ingress\' X-Forwarded-For)')
param webTokensPerMinute int = 10

@allowed([
  'off'
  'graph'
])
@description('E-mail to citizens (web citizens, Teams citizens who blocked the bot): graph sends with Microsoft Graph from the agency file\'s `mailbox`, which must then be set')
param citizenMail string = 'off'

// Direct Line's host follows the bot's data residency (Regionalization in Azure AI Bot Service:
// https://learn.microsoft.com/azure/bot-service/bot-builder-concept-regionalization).
var directLineEndpoint = botLocation == 'westeurope' ? 'https://europe.directline.botframework.com' : 'https://directline.botframework.com'

var prefix = 'guichet-${agencyId}'
var suffix = uniqueString(resourceGroup().id, agencyId)

module identity 'modules/identity.bicep' = {
  name: 'identity'
  params: {
    name: '${prefix}-identity'
    location: location
  }
}

// Pull the image with the managed identity: no registry password anywhere.
var acrPullRole = '7f951dda-4ed3-4680-a7ca-43fe172d538d'

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' existing = if (!empty(registryName)) {
  name: registryName
}

resource pullImages 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(registryName)) {
  name: guid(resourceGroup().id, registryName, prefix, acrPullRole)
  scope: registry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', acrPullRole)
    principalId: identity.outputs.principalId
    principalType: 'ServicePrincipal'
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    prefix: prefix
    location: location
  }
}

module database 'modules/postgres.bicep' = {
  name: 'database'
  params: {
    name: '${prefix}-${suffix}'
    location: location
    adminLogin: postgresAdminLogin
    adminPassword: postgresAdminPassword
    skuName: postgresSkuName
    skuTier: postgresSkuTier
    backupRetentionDays: backupRetentionDays
    geoRedundantBackup: geoRedundantBackup
  }
}

module vault 'modules/keyvault.bicep' = {
  name: 'vault'
  params: {
    name: 'kv-${suffix}'
    location: location
    readerPrincipalId: identity.outputs.principalId
    // TLS to the server is required; the password is URL-encoded.
    databaseUrl: 'postgresql+asyncpg://${postgresAdminLogin}:${uriComponent(postgresAdminPassword)}@${database.outputs.fqdn}:5432/${database.outputs.databaseName}?ssl=require'
    graphClientSecret: graphClientSecret
    metricsToken: metricsToken
    insightsConnectionString: monitoring.outputs.insightsConnectionString
    directLineSecret: directLineSecret
    manageLinkSecret: manageLinkSecret
  }
}

module apps 'modules/containerapps.bicep' = {
  name: 'apps'
  dependsOn: [
    vault
    pullImages
  ]
  params: {
    prefix: prefix
    location: location
    image: image
    registryServer: empty(registryName) ? '' : '${registryName}.azurecr.io'
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    tenantId: tenant().tenantId
    logAnalyticsName: monitoring.outputs.workspaceName
    databaseUrlUri: vault.outputs.databaseUrlUri
    graphClientSecretUri: vault.outputs.graphClientSecretUri
    metricsTokenUri: vault.outputs.metricsTokenUri
    insightsConnectionStringUri: vault.outputs.insightsConnectionStringUri
    directLineSecretUri: vault.outputs.directLineSecretUri
    manageLinkSecretUri: vault.outputs.manageLinkSecretUri
    agencyFile: '/app/deployment/agencies/${agencyId}/agency.toml'
    graphTenantId: graphTenantId
    graphClientId: graphClientId
    teamsAppId: teamsAppId
    webOrigins: webOrigins
    directLineEndpoint: directLineEndpoint
    webTokensPerMinute: webTokensPerMinute
    manageLinkUrl: manageLinkUrl
    mail: citizenMail
    webMinReplicas: webMinReplicas
    webMaxReplicas: webMaxReplicas
    workerReplicas: workerReplicas
  }
}

module bot 'modules/bot.bicep' = {
  name: 'bot'
  params: {
    name: '${prefix}-${suffix}'
    location: botLocation
    webOrigins: webOrigins
    displayName: botDisplayName
    endpoint: 'https://${apps.outputs.webFqdn}/api/messages'
    identityClientId: identity.outputs.clientId
    identityId: identity.outputs.id
    tenantId: tenant().tenantId
  }
}

@description('The bot\'s Microsoft App ID: give it to `guichet package-app --app-id`')
output botAppId string = identity.outputs.clientId
output messagingEndpoint string = 'https://${apps.outputs.webFqdn}/api/messages'
output migrationJobName string = apps.outputs.migrationJobName
output webAppName string = apps.outputs.webName
output workerAppName string = apps.outputs.workerName
output botResourceName string = bot.outputs.name
@description('The Direct Line site whose key goes into directLineSecret (empty: no website)')
output directLineSiteName string = bot.outputs.directLineSiteName
output keyVaultName string = 'kv-${suffix}'
