// The bot's identity: one user-assigned managed identity. It is the bot's Microsoft App ID in the Azure Bot
// resource (MicrosoftAppType=UserAssignedMSI, no password to rotate), reads the Key Vault secrets for the
// container apps, and pulls the image from the registry.

@description('Name of the managed identity')
param name string

@description('Azure region')
param location string

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
}

output id string = identity.id
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
