// Azure Bot registration for gatebot: a single-tenant bot (the app
// registration lives in your Entra tenant) with the Microsoft Teams channel
// on. gatebot itself runs wherever you host it (deploy/README: compose or
// Helm); this registers where Teams sends messages and who the bot is.
//
//   az deployment group create -g <group> -f deploy/azure/main.bicep \
//     -p @deploy/azure/main.parameters.example.json -p msaAppId=<app id> host=<host>
//
// Walkthrough: deploy/azure/README.md.

@description('Name of the Azure Bot resource, unique across Azure (2-64 letters, digits, _, . and -).')
@minLength(2)
@maxLength(64)
param botName string

@description('Name shown in Teams.')
@maxLength(42)
param displayName string = 'gatebot'

@description('Application (client) ID of the Entra app registration gatebot signs in as (bot.app_id).')
param msaAppId string

@description('Directory (tenant) ID the app registration belongs to (bot.tenant_id). Defaults to this deployment\'s tenant.')
param msaAppTenantId string = tenant().tenantId

@description('Public host name gatebot is reached at over HTTPS, without scheme or path (public_url\'s host), e.g. gatebot.example.com.')
param host string

@description('Pricing tier: F0 is free (standard channels such as Teams are free on both), S1 is paid with an SLA.')
@allowed([
  'F0'
  'S1'
])
param sku string = 'F0'

param tags object = {}

resource bot 'Microsoft.BotService/botServices@2022-09-15' = {
  name: botName
  // Bot registrations are global; the messaging endpoint decides where
  // traffic goes.
  location: 'global'
  kind: 'azurebot'
  sku: {
    name: sku
  }
  tags: tags
  properties: {
    displayName: displayName
    endpoint: 'https://${host}/api/messages'
    msaAppId: msaAppId
    msaAppType: 'SingleTenant'
    msaAppTenantId: msaAppTenantId
  }
}

resource teams 'Microsoft.BotService/botServices/channels@2022-09-15' = {
  parent: bot
  name: 'MsTeamsChannel'
  location: 'global'
  properties: {
    channelName: 'MsTeamsChannel'
    properties: {
      isEnabled: true
      // gatebot posts cards and answers invokes; it takes no calls.
      enableCalling: false
    }
  }
}

@description('The messaging endpoint Teams posts activities to.')
output messagingEndpoint string = bot.properties.endpoint

@description('Set these in gatebot.yaml (bot.app_id, bot.tenant_id).')
output appId string = msaAppId
output tenantId string = msaAppTenantId
