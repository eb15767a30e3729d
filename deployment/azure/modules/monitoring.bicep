// Log Analytics (the container apps' console and system logs) and a workspace-based Application Insights
// (traces and metrics sent by the bot when APPLICATIONINSIGHTS_CONNECTION_STRING is set).

@description('Prefix of the resource names')
param prefix string

@description('Azure region')
param location string

@description('Days the logs are kept')
param retentionInDays int = 30

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: '${prefix}-logs'
  location: location
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: retentionInDays
  }
}

resource insights 'Microsoft.Insights/components@2020-02-02' = {
  name: '${prefix}-insights'
  location: location
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
  }
}

output workspaceName string = workspace.name
output insightsConnectionString string = insights.properties.ConnectionString
