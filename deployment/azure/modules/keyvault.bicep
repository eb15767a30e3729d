// Key Vault: the secrets the container apps read through the bot's managed identity (Container Apps Key
// Vault references). Nothing secret is stored in the container apps' own configuration.

@description('Vault name (unique in Azure, 3-24 characters)')
param name string

@description('Azure region')
param location string

@description('Principal id of the managed identity that reads the secrets')
param readerPrincipalId string

@secure()
param databaseUrl string

@secure()
param graphClientSecret string

@secure()
param metricsToken string

@secure()
param insightsConnectionString string

// The website's secrets: empty until the Web Chat is set up (deployment/README.md, "Install on Azure").
@secure()
@description('Key of the bot\'s Direct Line site, copied from the channel after the first deployment; empty: none yet')
param directLineSecret string = ''

@secure()
@description('Secret signing the manage links in e-mails (32+ characters); empty: no manage links')
param manageLinkSecret string = ''

// Built-in role "Key Vault Secrets User": read secret values, nothing else.
var secretsUserRole = '4633458b-17de-408a-b874-0445c86b69e6'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
  }
}

resource databaseUrlSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'database-url'
  properties: {
    value: databaseUrl
  }
}

resource graphSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'graph-client-secret'
  properties: {
    value: graphClientSecret
  }
}

resource metricsSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'metrics-token'
  properties: {
    value: metricsToken
  }
}

resource insightsSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'appinsights-connection-string'
  properties: {
    value: insightsConnectionString
  }
}

resource directLineSecretValue 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(directLineSecret)) {
  parent: vault
  name: 'directline-secret'
  properties: {
    value: directLineSecret
  }
}

resource manageLinkSecretValue 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(manageLinkSecret)) {
  parent: vault
  name: 'manage-link-secret'
  properties: {
    value: manageLinkSecret
  }
}

resource readSecrets 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, readerPrincipalId, secretsUserRole)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', secretsUserRole)
    principalId: readerPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Versionless URIs: Container Apps picks up a rotated secret by itself (within about 30 minutes).
output databaseUrlUri string = databaseUrlSecret.properties.secretUri
output graphClientSecretUri string = graphSecret.properties.secretUri
output metricsTokenUri string = metricsSecret.properties.secretUri
output insightsConnectionStringUri string = insightsSecret.properties.secretUri
// Empty when the secret is not given: the container apps then do not reference it.
output directLineSecretUri string = empty(directLineSecret) ? '' : directLineSecretValue.properties.secretUri
output manageLinkSecretUri string = empty(manageLinkSecret) ? '' : manageLinkSecretValue.properties.secretUri
// Lets the container apps wait for the role assignment before they resolve the secrets.
output readerRoleAssignmentId string = readSecrets.id
