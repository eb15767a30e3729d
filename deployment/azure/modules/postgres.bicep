// Azure Database for PostgreSQL flexible server: the bot's only store (appointments, consent proofs, the audit
// trail, jobs, conversation state). Automatic backups with point-in-time restore within backupRetentionDays.

@description('Server name (unique in Azure)')
param name string

@description('Azure region')
param location string

@description('Administrator login; the bot connects with it')
param adminLogin string

@secure()
@description('Administrator password')
param adminPassword string

@description('Compute size, e.g. Standard_B2s (Burstable) or Standard_D2ds_v5 (GeneralPurpose)')
param skuName string = 'Standard_B2s'

@allowed([
  'Burstable'
  'GeneralPurpose'
  'MemoryOptimized'
])
param skuTier string = 'Burstable'

@description('Storage in GiB')
param storageSizeGB int = 32

@minValue(7)
@maxValue(35)
@description('Days of point-in-time restore')
param backupRetentionDays int = 35

@description('Keep a copy of the backups in the paired region (set when the server is created; cannot be changed later)')
param geoRedundantBackup bool = false

resource server 'Microsoft.DBforPostgreSQL/flexibleServers@2024-08-01' = {
  name: name
  location: location
  sku: {
    name: skuName
    tier: skuTier
  }
  properties: {
    version: '16'
    administratorLogin: adminLogin
    administratorLoginPassword: adminPassword
    storage: {
      storageSizeGB: storageSizeGB
    }
    backup: {
      backupRetentionDays: backupRetentionDays
      geoRedundantBackup: geoRedundantBackup ? 'Enabled' : 'Disabled'
    }
    highAvailability: {
      mode: 'Disabled'
    }
  }
}

// The schema's exclusion constraint (no two appointments of a counselor overlap) needs btree_gist, which
// Azure allows only once it is on this list.
resource extensions 'Microsoft.DBforPostgreSQL/flexibleServers/configurations@2024-08-01' = {
  parent: server
  name: 'azure.extensions'
  properties: {
    value: 'BTREE_GIST'
    source: 'user-override'
  }
}

// One change at a time: the server refuses concurrent updates ("ServerIsBusy").
resource database 'Microsoft.DBforPostgreSQL/flexibleServers/databases@2024-08-01' = {
  parent: server
  name: 'guichet'
  dependsOn: [
    extensions
  ]
  properties: {
    charset: 'UTF8'
    collation: 'en_US.utf8'
  }
}

// Reachable from Azure services (the container apps) only. A private network is stronger: see the guide.
resource azureServices 'Microsoft.DBforPostgreSQL/flexibleServers/firewallRules@2024-08-01' = {
  parent: server
  name: 'AllowAzureServices'
  dependsOn: [
    database
  ]
  properties: {
    startIpAddress: '0.0.0.0'
    endIpAddress: '0.0.0.0'
  }
}

output fqdn string = server.properties.fullyQualifiedDomainName
output databaseName string = database.name
