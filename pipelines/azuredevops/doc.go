// Package azuredevops starts, follows and cancels Azure DevOps (Azure
// Pipelines) runs through the Pipelines Runs REST API 7.1.
//
// Azure DevOps REST API docs:
//   - run pipeline: https://learn.microsoft.com/rest/api/azure/devops/pipelines/runs/run-pipeline?view=azure-devops-rest-7.1
//   - get run: https://learn.microsoft.com/rest/api/azure/devops/pipelines/runs/get?view=azure-devops-rest-7.1
//   - update build (cancel): https://learn.microsoft.com/rest/api/azure/devops/build/builds/update-build?view=azure-devops-rest-7.1
//
// Authentication is a personal access token with the Build (Read &
// execute) scope, sent as HTTP Basic with an empty user name. An invalid
// PAT may get 203 with a sign-in page instead of 401; the client reports it
// as an authentication failure.
//
// Inputs go to templateParameters (runtime parameters, which the YAML must
// declare), or with target.inputs_as: variables to queue-time variables.
// The gate id goes in a queue-time variable only when
// target.gate_id_variable names one (conventionally GATEBOT_GATE_ID): where
// "Limit variables that can be set at queue time" is on (the default for
// new organizations), Azure DevOps refuses (400) variables the pipeline does
// not mark "Settable at queue time", so the variable is opt-in and must be
// declared so in the pipeline's Variables UI. That 400 comes back as an
// error naming both settings.
//
// The Runs API has no cancel and no queued state: a run waiting for an
// agent is inProgress, reported as running. Cancel uses the Builds API
// (a run id is a build id). There is no idempotency key; a Trigger repeated
// after a crash between the call and gatebot recording its answer queues a
// second run (the Runs API's listing does not show variables to match).
//
// Like every provider sub-package it imports only pipelines,
// pipelines/apiclient and the standard library.
package azuredevops
