// Alerts on what the bridge emits: log search alert rules over the Log Analytics workspace behind
// Application Insights (AppMetrics, AppTraces, AppRequests). The queries live in ../alerts/*.kql so
// tests/infra/test_alerts.py can hold their names against mcp_bridge/telemetry.
param location string
param tags object
param namePrefix string
param workspaceId string
param alertEmail string
param failoversPerHourThreshold int
param tokenRefreshFailureThreshold int
param http5xxPercentThreshold int
param http5xxMinimumRequests int

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = if (!empty(alertEmail)) {
  name: '${namePrefix}-alerts'
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'schedbridge'
    enabled: true
    emailReceivers: [
      {
        name: 'on-call'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
  }
}

var actionGroups = empty(alertEmail) ? [] : [actionGroup.id]

resource everyEndpointUnusable 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: '${namePrefix}-every-endpoint-unusable'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Scheduler bridge: every endpoint unusable'
    description: 'No Scheduler endpoint passed a health probe in 10 minutes, or a call found no usable endpoint.'
    severity: 1
    enabled: true
    scopes: [
      workspaceId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT10M'
    criteria: {
      allOf: [
        {
          query: loadTextContent('../alerts/every-endpoint-unusable.kql')
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: actionGroups
    }
  }
}

resource failovers 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: '${namePrefix}-failovers'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Scheduler bridge: failovers per hour'
    description: 'More than ${failoversPerHourThreshold} failovers (calls moved to another endpoint, active endpoint changes) in one hour.'
    severity: 2
    enabled: true
    scopes: [
      workspaceId
    ]
    evaluationFrequency: 'PT15M'
    windowSize: 'PT1H'
    criteria: {
      allOf: [
        {
          query: loadTextContent('../alerts/failovers.kql')
          timeAggregation: 'Total'
          metricMeasureColumn: 'failovers'
          operator: 'GreaterThan'
          threshold: failoversPerHourThreshold
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: actionGroups
    }
  }
}

resource tokenRefreshFailures 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: '${namePrefix}-token-refresh-failures'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Scheduler bridge: token refresh failures'
    description: 'More than ${tokenRefreshFailureThreshold} managed-identity token refreshes failed in 15 minutes.'
    severity: 2
    enabled: true
    scopes: [
      workspaceId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: loadTextContent('../alerts/token-refresh-failures.kql')
          timeAggregation: 'Total'
          metricMeasureColumn: 'failures'
          operator: 'GreaterThan'
          threshold: tokenRefreshFailureThreshold
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: actionGroups
    }
  }
}

resource http5xx 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: '${namePrefix}-http-5xx'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Scheduler bridge: 5xx rate'
    description: 'More than ${http5xxPercentThreshold}% of requests (at least ${http5xxMinimumRequests}) answered with a 5xx in 15 minutes.'
    severity: 2
    enabled: true
    scopes: [
      workspaceId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: 'let minimum_requests = ${http5xxMinimumRequests};\n${loadTextContent('../alerts/http-5xx.kql')}'
          timeAggregation: 'Maximum'
          metricMeasureColumn: 'failed_percent'
          operator: 'GreaterThan'
          threshold: http5xxPercentThreshold
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: actionGroups
    }
  }
}

output ruleIds array = [
  everyEndpointUnusable.id
  failovers.id
  tokenRefreshFailures.id
  http5xx.id
]
