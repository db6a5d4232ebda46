// Package huaweiiam authenticates gatebot's Huawei Cloud providers
// (pipelines/codearts, pipelines/servicestage): an IAM token source that
// obtains project-scoped tokens with a password identity, caches each until
// shortly before it expires and lets concurrent callers share one refresh,
// and a Client that sends every call with X-Auth-Token (the static token or
// an IAM one), dropping a refused IAM token and repeating the call once.
//
// Huawei Cloud IAM API docs: Obtaining a User Token Through Password
// Authentication (https://support.huaweicloud.com/intl/en-us/api-iam/iam_30_0001.html).
// Tokens are valid for 24 hours; a password or permission change revokes
// them early, which the 401 handling covers.
//
// Usage:
//
//	c, err := huaweiiam.NewClient(huaweiiam.Options{
//		Provider: "servicestage",
//		BaseURL:  cfg.BaseURL,
//		Token:    cfg.Token, // or IAM: cfg.IAM
//		Settings: settings,  // from apiclient.ApplyOptions
//	})
//	resp, err := c.Do(ctx, http.MethodPost, path, "start release task", body, &answer)
//
// It imports only pipelines/apiclient, x/sync and the standard library.
package huaweiiam
