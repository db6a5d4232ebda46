// Package deploy holds no Go code: it is where gatebot's deployment files
// live (Dockerfile, compose.yaml, the Helm chart under helm/gatebot), and
// its test checks that those files agree with what the binary does (port,
// health endpoints, config path). Nothing imports it.
package deploy
