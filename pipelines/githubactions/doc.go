// Package githubactions starts and follows GitHub Actions workflow runs
// through the workflow_dispatch REST API, on github.com or GitHub
// Enterprise Server.
//
// GitHub API docs:
//   - create a workflow dispatch event:
//     https://docs.github.com/rest/actions/workflows#create-a-workflow-dispatch-event
//   - get / cancel a workflow run, list workflow runs for a workflow:
//     https://docs.github.com/rest/actions/workflow-runs
//   - return_run_details (200 with workflow_run_id, run_url, html_url):
//     https://github.blog/changelog/2026-02-19-workflow-dispatch-api-now-returns-run-ids/
//
// # Finding the run
//
// GitHub has no idempotency key, and before February 2026 a dispatch did not
// say which run it created. gatebot therefore can stamp the gate id into a
// workflow input named by the target's gate_id_input (conventionally
// gatebot_gate_id; it is sent only when the target names it, because GitHub
// refuses inputs a workflow does not declare with 422 "Unexpected inputs
// provided") and asks workflows to show it in their run name:
//
//	on:
//	  workflow_dispatch:
//	    inputs:
//	      version: {type: string, required: true}
//	      gatebot_gate_id: {type: string, required: false}
//	run-name: "Deploy ${{ inputs.version }} (${{ inputs.gatebot_gate_id }})"
//
// The run name is the run's display_title in the API, the only place a run
// listing shows anything the dispatcher chose. With it:
//
//   - Trigger first lists the workflow's recent workflow_dispatch runs and
//     returns a run whose display_title carries the gate id, so a retry
//     after a crash does not start a second run;
//   - when the server does not return run details (return_run_details off,
//     or GitHub Enterprise Server up to 3.20, which answers 400, or 422
//     "\"return_run_details\" is not a permitted key", to the field;
//     the client then retries once without it and stops sending it), Trigger
//     returns a Run with an empty ID and Ref holding the dispatch time, and
//     Status looks for the run on each poll until it appears. After
//     RunAppearTimeout Status fails with ErrRunNotFound.
//
// Without the run-name convention both still work when return_run_details
// is supported, except the duplicate check after a crash.
//
// Like every provider sub-package it imports only pipelines,
// pipelines/apiclient and the standard library.
package githubactions
