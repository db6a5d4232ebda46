package huaweiiam

import (
	"errors"
	"fmt"

	"github.com/gatebot/gatebot/pipelines/apiclient"
)

// Config is an IAM user whose password identity obtains project-scoped
// tokens (POST {url}/v3/auth/tokens). It is the `iam:` section of every
// Huawei Cloud provider.
type Config struct {
	// URL is the IAM endpoint; empty means https://iam.{region}.myhuaweicloud.com.
	URL string `yaml:"url"`
	// Domain is the account (domain) name the IAM user belongs to.
	Domain string `yaml:"domain"`
	// User is the IAM user name.
	User string `yaml:"user"`
	// Password is the IAM user's password.
	Password apiclient.Secret `yaml:"password"`
	// Project is the IAM project name the token is scoped to; empty means
	// Region (Huawei Cloud names a region's default project after it).
	Project string `yaml:"project"`
	// Region is the region, e.g. cn-north-4.
	Region string `yaml:"region"`
}

// Endpoint is the IAM base URL the tokens are obtained from.
func (c Config) Endpoint() string {
	if c.URL != "" {
		return c.URL
	}
	return "https://iam." + c.Region + ".myhuaweicloud.com"
}

// ProjectName is the IAM project the token is scoped to.
func (c Config) ProjectName() string {
	if c.Project != "" {
		return c.Project
	}
	return c.Region
}

// Validate reports every problem with c, each naming its field under
// "iam.".
func (c Config) Validate() []error {
	var errs []error
	if c.Domain == "" {
		errs = append(errs, errors.New("iam.domain is required (the account name)"))
	}
	if c.User == "" {
		errs = append(errs, errors.New("iam.user is required"))
	}
	if c.Password == "" {
		errs = append(errs, errors.New("iam.password is required"))
	}
	if c.URL == "" && c.Region == "" {
		errs = append(errs, errors.New("iam.url or iam.region is required"))
	} else if _, err := apiclient.ParseBaseURL(c.Endpoint()); err != nil {
		errs = append(errs, fmt.Errorf("iam.url: %v", err))
	}
	if c.ProjectName() == "" {
		errs = append(errs, errors.New("iam.project or iam.region is required (the token's project scope)"))
	}
	return errs
}

// ValidateAuth checks that exactly one of a static token and an IAM user
// supplies X-Auth-Token, and validates the IAM user.
func ValidateAuth(token apiclient.Secret, iam *Config) []error {
	switch {
	case token == "" && iam == nil:
		return []error{errors.New("token or iam is required (an IAM token, or an IAM user to obtain one)")}
	case token != "" && iam != nil:
		return []error{errors.New("token and iam are exclusive: give one")}
	case iam != nil:
		return iam.Validate()
	}
	return nil
}
