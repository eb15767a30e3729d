// Parameters for the example French family-allowance fund (deployment/agencies/example-fr). Copy this file
// for your agency, replace the values, then:
//   export GUICHET_GRAPH_CLIENT_SECRET=... GUICHET_METRICS_TOKEN=... POSTGRES_ADMIN_PASSWORD=...
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
