// Parameters for the example French family-allowance fund (deployment/agencies/example-fr). Copy this file
// for your agency, replace the values, then:
//   export GUICHET_GRAPH_CLIENT_SECRET=... GUICHET_METRICS_TOKEN=... POSTGRES_ADMIN_PASSWORD=...
//   export GUICHET_MANAGE_LINK_SECRET=... GUICHET_DIRECTLINE_SECRET=...   (the latter empty on the first run)
//   az deployment group create --resource-group <group> --parameters deployment/azure/example-fr.bicepparam
// Secrets are read from the environment of the person deploying: never write them in this file.
using 'main.bicep'

param agencyId = 'example-fr'
param location = 'francecentral'
param image = 'guichetregistry.azurecr.io/guichet:1.0.0'
param registryName = 'guichetregistry'

param graphClientId = '00000000-0000-0000-0000-000000000000'
param graphClientSecret = readEnvironmentVariable('GUICHET_GRAPH_CLIENT_SECRET')
param metricsToken = readEnvironmentVariable('GUICHET_METRICS_TOKEN')
param postgresAdminPassword = readEnvironmentVariable('POSTGRES_ADMIN_PASSWORD')
param teamsAppId = ''

// A larger fund: more web replicas under load, a general-purpose database and two workers (24 messages
// per second each).
param webMinReplicas = 2
param webMaxReplicas = 6
param workerReplicas = 2
param postgresSkuName = 'Standard_D2ds_v5'
param postgresSkuTier = 'GeneralPurpose'
param backupRetentionDays = 35
param geoRedundantBackup = true
param botDisplayName = 'Guichet - Caisse exemple (FR)'

// Personal data kept in Europe; the bot's Direct Line host follows (europe.directline.botframework.com).
param botLocation = 'westeurope'

// The agency's website (deployment/README.md, "Install on Azure"): its Web Chat page, the manage links in the
// e-mails, sent from the agency file's mailbox. The Direct Line key exists only after the first deployment.
param webOrigins = [
  'https://www.allocations-fictives.example'
]
param manageLinkUrl = 'https://www.allocations-fictives.example/rendez-vous'
param directLineSecret = readEnvironmentVariable('GUICHET_DIRECTLINE_SECRET', '')
param manageLinkSecret = readEnvironmentVariable('GUICHET_MANAGE_LINK_SECRET')
param citizenMail = 'graph'
