// Container Apps: one environment, the web app (Teams' messages; at least two replicas, probes on /healthz
// and /readyz), the worker (the jobs; a fixed number of replicas, never scaled to zero) and the migration as
// a manual Container Apps job, started before each rollout (deployment/README.md, "Upgrading").
// All three run the same image with the same settings (the web app also holds the Direct Line secret, which
// only its token endpoint uses); secrets come from Key Vault through the managed identity.

@description('Prefix of the resource names')
param prefix string

@description('Azure region')
param location string

@description('The image, e.g. myregistry.azurecr.io/guichet:1.0.0')
param image string

@description('Registry to pull from with the managed identity (empty: a public image)')
param registryServer string

@description('Resource id of the bot\'s managed identity')
param identityId string

@description('Client id of the bot\'s managed identity: the bot\'s Microsoft App ID')
param identityClientId string

@description('Entra tenant of the managed identity')
param tenantId string

@description('Log Analytics workspace receiving the logs')
param logAnalyticsName string

@description('Versionless Key Vault URIs of the secrets')
param databaseUrlUri string
param graphClientSecretUri string
param metricsTokenUri string
param insightsConnectionStringUri string

@description('Versionless Key Vault URIs of the website\'s secrets; empty: not given (the setting is not passed)')
param directLineSecretUri string
param manageLinkSecretUri string

@description('The agency file inside the image')
param agencyFile string

param graphTenantId string
param graphClientId string
param teamsAppId string

@description('Origins of the agency\'s website that may ask for Direct Line tokens; empty: the Web Chat is off')
param webOrigins array

@description('Direct Line endpoint of the bot\'s data residency')
param directLineEndpoint string

@description('Tokens the website may ask for a minute (see main.bicep)')
param webTokensPerMinute int

@description('The agency\'s Web Chat page that manage links open')
param manageLinkUrl string

@allowed([
  'off'
  'graph'
])
@description('E-mail to citizens: graph sends from the agency file\'s mailbox')
param mail string

@minValue(2)
param webMinReplicas int

param webMaxReplicas int

@minValue(1)
param workerReplicas int

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' existing = {
  name: logAnalyticsName
}

resource environment 'Microsoft.App/managedEnvironments@2024-03-01' = {
  name: '${prefix}-env'
  location: location
  properties: {
    appLogsConfiguration: {
      destination: 'log-analytics'
      logAnalyticsConfiguration: {
        customerId: workspace.properties.customerId
        sharedKey: workspace.listKeys().primarySharedKey
      }
    }
  }
}

var identity = {
  type: 'UserAssigned'
  userAssignedIdentities: {
    '${identityId}': {}
  }
}

var registries = empty(registryServer) ? [] : [
  {
    server: registryServer
    identity: identityId
  }
]

// Key Vault references: resolved by Container Apps with the managed identity.
var secrets = [
  {
    name: 'database-url'
    keyVaultUrl: databaseUrlUri
    identity: identityId
  }
  {
    name: 'graph-client-secret'
    keyVaultUrl: graphClientSecretUri
    identity: identityId
  }
  {
    name: 'metrics-token'
    keyVaultUrl: metricsTokenUri
    identity: identityId
  }
  {
    name: 'appinsights-connection-string'
    keyVaultUrl: insightsConnectionStringUri
    identity: identityId
  }
]

// The website's secrets, each only once it is in Key Vault (a reference to a missing secret would stop the
// revision from starting). The Direct Line secret goes to the web app alone.
var manageLinkSecrets = empty(manageLinkSecretUri) ? [] : [
  {
    name: 'manage-link-secret'
    keyVaultUrl: manageLinkSecretUri
    identity: identityId
  }
]

var directLineSecrets = empty(directLineSecretUri) ? [] : [
  {
    name: 'directline-secret'
    keyVaultUrl: directLineSecretUri
    identity: identityId
  }
]

// The settings every process gets (bot/settings.py names them; tests/test_deployment_files.py checks them).
var settings = [
  {
    name: 'GUICHET_ENV'
    value: 'production'
  }
  {
    name: 'GUICHET_AGENCY'
    value: agencyFile
  }
  {
    name: 'GUICHET_DATABASE_URL'
    secretRef: 'database-url'
  }
  {
    name: 'MicrosoftAppId'
    value: identityClientId
  }
  {
    name: 'MicrosoftAppType'
    value: 'UserAssignedMSI'
  }
  {
    name: 'MicrosoftAppTenantId'
    value: tenantId
  }
  {
    name: 'GUICHET_GRAPH_TENANT_ID'
    value: graphTenantId
  }
  {
    name: 'GUICHET_GRAPH_CLIENT_ID'
    value: graphClientId
  }
  {
    name: 'GUICHET_GRAPH_CLIENT_SECRET'
    secretRef: 'graph-client-secret'
  }
  {
    name: 'GUICHET_TEAMS_APP_ID'
    value: teamsAppId
  }
  {
    name: 'GUICHET_METRICS_TOKEN'
    secretRef: 'metrics-token'
  }
  {
    name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
    secretRef: 'appinsights-connection-string'
  }
  {
    name: 'GUICHET_LOG_LEVEL'
    value: 'INFO'
  }
  // The website (deployment/README.md, "The agency's website: Web Chat"): the worker sends the e-mails with
  // their manage links, the web app checks those links and answers the token endpoint.
  {
    name: 'GUICHET_WEB_ORIGINS'
    value: string(webOrigins)
  }
  {
    name: 'GUICHET_DIRECTLINE_ENDPOINT'
    value: directLineEndpoint
  }
  {
    name: 'GUICHET_WEB_TOKENS_PER_MINUTE'
    value: string(webTokensPerMinute)
  }
  {
    name: 'GUICHET_MANAGE_LINK_URL'
    value: manageLinkUrl
  }
  {
    name: 'GUICHET_MAIL'
    value: mail
  }
]

var websiteSecretSettings = empty(manageLinkSecretUri) ? [] : [
  {
    name: 'GUICHET_MANAGE_LINK_SECRET'
    secretRef: 'manage-link-secret'
  }
]

var allSecrets = concat(secrets, manageLinkSecrets)
var allSettings = concat(settings, websiteSecretSettings)

var containerResources = {
  cpu: json('0.5')
  memory: '1Gi'
}

resource web 'Microsoft.App/containerApps@2024-03-01' = {
  name: '${prefix}-web'
  location: location
  identity: identity
  properties: {
    managedEnvironmentId: environment.id
    configuration: {
      activeRevisionsMode: 'Single'
      ingress: {
        external: true
        targetPort: 3978
        transport: 'auto'
        allowInsecure: false
      }
      secrets: concat(allSecrets, directLineSecrets)
      registries: registries
    }
    template: {
      containers: [
        {
          name: 'bot'
          image: image
          args: [
            'serve'
          ]
          // The web replicas answer Teams and the website only; the worker runs the jobs.
          env: concat(allSettings, [
            {
              name: 'GUICHET_JOBS'
              value: 'off'
            }
            {
              // Container Apps' ingress appends the visitor's address to X-Forwarded-For: the token
              // endpoint's rate limit is then per visitor, not one for the whole website.
              name: 'GUICHET_FORWARDED_HOPS'
              value: '1'
            }
          ], empty(directLineSecretUri) ? [] : [
            {
              name: 'GUICHET_DIRECTLINE_SECRET'
              secretRef: 'directline-secret'
            }
          ])
          resources: containerResources
          probes: [
            {
              type: 'Startup'
              httpGet: {
                path: '/healthz'
                port: 3978
              }
              periodSeconds: 5
              failureThreshold: 12
            }
            {
              type: 'Liveness'
              httpGet: {
                path: '/healthz'
                port: 3978
              }
              periodSeconds: 15
              failureThreshold: 3
            }
            {
              // Not ready while the database is unreachable: Teams' messages go to other replicas.
              type: 'Readiness'
              httpGet: {
                path: '/readyz'
                port: 3978
              }
              periodSeconds: 10
              failureThreshold: 3
            }
          ]
        }
      ]
      scale: {
        minReplicas: webMinReplicas
        maxReplicas: webMaxReplicas
        rules: [
          {
            name: 'http'
            http: {
              metadata: {
                concurrentRequests: '50'
              }
            }
          }
        ]
      }
    }
  }
}

resource worker 'Microsoft.App/containerApps@2024-03-01' = {
  name: '${prefix}-worker'
  location: location
  identity: identity
  properties: {
    managedEnvironmentId: environment.id
    configuration: {
      activeRevisionsMode: 'Single'
      secrets: allSecrets
      registries: registries
    }
    template: {
      containers: [
        {
          name: 'worker'
          image: image
          args: [
            'worker'
          ]
          // Teams allows about 50 messages per second per app and tenant: the workers share 48 of them.
          env: concat(allSettings, [
            {
              name: 'GUICHET_TENANT_MESSAGES_PER_SECOND'
              value: string(48 / workerReplicas)
            }
          ])
          resources: containerResources
        }
      ]
      // A fixed count: reminders are due whether or not anyone writes to the bot, so never zero.
      scale: {
        minReplicas: workerReplicas
        maxReplicas: workerReplicas
      }
    }
  }
}

resource migrate 'Microsoft.App/jobs@2024-03-01' = {
  name: '${prefix}-migrate'
  location: location
  identity: identity
  properties: {
    environmentId: environment.id
    configuration: {
      triggerType: 'Manual'
      replicaTimeout: 900
      replicaRetryLimit: 1
      manualTriggerConfig: {
        parallelism: 1
        replicaCompletionCount: 1
      }
      secrets: allSecrets
      registries: registries
    }
    template: {
      containers: [
        {
          name: 'migrate'
          image: image
          args: [
            'db'
            'upgrade'
          ]
          env: allSettings
          resources: containerResources
        }
      ]
    }
  }
}

output webFqdn string = web.properties.configuration.ingress.fqdn
output webName string = web.name
output workerName string = worker.name
output migrationJobName string = migrate.name
