// Package servicestage starts, follows and stops Huawei Cloud ServiceStage
// release tasks ("New Release Management") for gatebot
// (pipelines.Provider, Canceler, Checker and Rejecter), and relays Teams
// approval decisions to release tasks waiting at an approval task.
//
// Everything goes through one API, "Operating a Release Task Based on the
// Release Task ID"
// (https://support.huaweicloud.com/intl/en-us/api-servicestage/servicestage_06_0248.html):
// POST /v3/{project_id}/pipeline/pipelines/{pipeline_id}/action?action_id=…
// with start (optional selected_tasks), stop, retry, continue, rollback and
// approval (task_name, approval_type agree|refuse, message); the answer is
// {id, pipeline_id, status}, id being the execution id. It needs the IAM
// permission servicestage:pipeline:modify. The host is
// https://servicestage.{region}.myhuaweicloud.com and project_id is the
// tenant's IAM project id (not a CodeArts project id).
//
// Runs are followed through the release task's execution records (GET
// …/pipelines/{id}/records), falling back to the release task list's
// status; every documented status code is mapped, and an undocumented one
// is followed for at most an hour. Every call carries X-Auth-Token: the
// configured token, or an IAM token from pipelines/huaweiiam.
//
// The action API has no idempotency key and no field for the gate id, so a
// repeated start cannot be recognised: this provider does not claim
// idempotency, and gatebot never repeats a trigger whose outcome is
// unknown.
//
// Usage:
//
//	c, err := servicestage.New(servicestage.Config{
//		BaseURL:   "https://servicestage.cn-north-4.myhuaweicloud.com",
//		ProjectID: "0a1b2c3d4e5f60718293a4b5c6d7e8f9",
//		IAM:       &huaweiiam.Config{Domain: "acme", User: "gatebot", Password: pw, Region: "cn-north-4"},
//	})
//	run, err := c.Trigger(ctx, pipelines.Request{GateID: id, Target: map[string]any{"pipeline_id": releaseTaskID}})
//
// It imports only pipelines, pipelines/apiclient, pipelines/huaweiiam and
// the standard library.
package servicestage
