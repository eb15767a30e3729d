// Parameters for the example Belgian fund (deployment/agencies/example-be). Copy this file for your agency,
// replace the values, then:
//   export GUICHET_GRAPH_CLIENT_SECRET=... GUICHET_METRICS_TOKEN=... POSTGRES_ADMIN_PASSWORD=...
//   export GUICHET_MANAGE_LINK_SECRET=... GUICHET_DIRECTLINE_SECRET=...   (the latter empty on the first run)
//   az deployment group create --resource-group <group> --parameters deployment/azure/example-be.bicepparam
// Secrets are read from the environment of the person deploying: never write them in this file.
using 'main.bicep'

param agencyId = 'example-be'
param location = 'westeurope'
param image = 'guichetregistry.azurecr.io/guichet:1.0.0'
param registryName = 'guichetregistry'

param graphClientId = '00000000-0000-0000-0000-000000000000'
param graphClientSecret = readEnvironmentVariable('GUICHET_GRAPH_CLIENT_SECRET')
param metricsToken = readEnvironmentVariable('GUICHET_METRICS_TOKEN')
param postgresAdminPassword = readEnvironmentVariable('POSTGRES_ADMIN_PASSWORD')
param teamsAppId = ''

param webMinReplicas = 2
param workerReplicas = 1
param backupRetentionDays = 35
param botDisplayName = 'Guichet - Caisse exemple'

// Personal data kept in Europe; the bot's Direct Line host follows (europe.directline.botframework.com).
param botLocation = 'westeurope'

// The agency's website (deployment/README.md, "Install on Azure"): its Web Chat page, the manage links in the
// e-mails, sent from the agency file's mailbox. The Direct Line key exists only after the first deployment.
param webOrigins = [
  'https://www.caisse-fictive.example'
]
param manageLinkUrl = 'https://www.caisse-fictive.example/rendez-vous'
param directLineSecret = readEnvironmentVariable('GUICHET_DIRECTLINE_SECRET', '')
param manageLinkSecret = readEnvironmentVariable('GUICHET_MANAGE_LINK_SECRET')
param citizenMail = 'graph'
