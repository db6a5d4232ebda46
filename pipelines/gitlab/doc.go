// Package gitlab starts, follows and cancels GitLab CI/CD pipelines on
// gitlab.com or a self-managed instance.
//
// GitLab API docs:
//   - create a pipeline: https://docs.gitlab.com/api/pipelines/#create-a-new-pipeline
//   - trigger a pipeline with a token: https://docs.gitlab.com/api/pipeline_triggers/#trigger-a-pipeline-with-a-token
//   - get / cancel a pipeline: https://docs.gitlab.com/api/pipelines/
//
// Two ways to start a pipeline, chosen by configuration:
//
//   - token (a personal, project or group access token with the api scope,
//     sent as PRIVATE-TOKEN): POST /api/v4/projects/:id/pipeline with the
//     inputs as CI/CD variables, or as spec:inputs with
//     target.inputs_as: inputs;
//   - trigger_token (a pipeline trigger token, which belongs to one
//     project): POST /api/v4/projects/:id/trigger/pipeline with form fields
//     token, ref and variables[KEY]. The trigger token goes in the form
//     body, never the URL, so it cannot leak through access logs. Status
//     then uses token if configured, else no credentials (enough for public
//     projects); Cancel needs token.
//
// In variables mode every pipeline carries the gate id in the
// GATEBOT_GATE_ID variable. In inputs mode gatebot sends no pipeline
// variables at all (many projects forbid them: Settings > CI/CD > Variables
// > Minimum role to use pipeline variables); the gate id goes in the
// spec:inputs entry named by target.gate_id_input when the pipeline
// declares one, else nowhere. A refused-variables answer ("Insufficient
// permissions to set pipeline variables") comes back as an error naming
// that setting.
// GitLab has no idempotency key and its pipeline listing does not show
// variables, so a Trigger repeated after a crash between the create call
// and gatebot recording its answer starts a second pipeline; gatebot's
// per-gate lock makes that window small.
//
// Like every provider sub-package it imports only pipelines,
// pipelines/apiclient and the standard library.
package gitlab
