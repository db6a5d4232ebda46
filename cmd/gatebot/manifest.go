package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/gatebot/gatebot/manifest"
)

const manifestUsage = `usage: gatebot manifest --app-id GUID --website-url URL [--out gatebot.zip] [flags]

Build the Teams app package (manifest.json, color.png, outline.png) to
upload in Teams (Apps → Manage your apps → Upload an app) or the Teams
admin center. The manifest is checked against Teams' schema ` + manifest.SchemaVersion + `
before anything is written. With --config, --app-id defaults to bot.app_id
and --website-url to public_url.`

// manifestFlag is the flag that sets a manifest.Options field, so an
// invalid option is reported as the flag the user typed.
func manifestFlag(option string) string {
	switch option {
	case "AppID":
		return "--app-id"
	case "WebsiteURL":
		return "--website-url"
	case "PrivacyURL":
		return "--privacy-url"
	case "TermsURL":
		return "--terms-url"
	case "ShortDescription":
		return "--short-description"
	case "FullDescription":
		return "--full-description"
	}
	return "--" + strings.ToLower(option) // Name, Developer, Version
}

// buildManifest writes the Teams app package for the configured bot.
func buildManifest(args []string, getenv func(string) string, stdout io.Writer) error {
	fs := newFlags("manifest")
	cfgPath := fs.String("config", getenv("GATEBOT_CONFIG"), "config file (for bot.app_id and public_url)")
	out := fs.String("out", "gatebot.zip", "where to write the package")
	var o manifest.Options
	fs.StringVar(&o.AppID, "app-id", "", "the bot's Microsoft Entra application id, a GUID (default: bot.app_id from the config)")
	fs.StringVar(&o.WebsiteURL, "website-url", "", "https URL of the bot's home page (default: public_url from the config)")
	fs.StringVar(&o.Name, "name", manifest.DefaultName, "app name in Teams, at most 30 characters")
	fs.StringVar(&o.Developer, "developer", manifest.DefaultDeveloper, "publisher name, at most 32 characters")
	fs.StringVar(&o.PrivacyURL, "privacy-url", "", "https URL of the privacy statement (default: --website-url)")
	fs.StringVar(&o.TermsURL, "terms-url", "", "https URL of the terms of use (default: --website-url)")
	fs.StringVar(&o.Version, "version", manifest.DefaultVersion, "app package version x.y.z; raise it for every upload that changes the package")
	fs.StringVar(&o.ShortDescription, "short-description", manifest.DefaultShortDescription, "at most 80 characters")
	fs.StringVar(&o.FullDescription, "full-description", manifest.DefaultFullDescription, "at most 4000 characters")
	pos, err := parseArgs(fs, args, "manifest", manifestUsage, stdout)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 0, "manifest", "", manifestUsage); err != nil {
		return err
	}
	if *out == "" {
		return usageError("manifest: --out: must not be empty\n" + manifestUsage)
	}
	fromConfig := map[string]string{}
	if *cfgPath != "" {
		c, _, err := loadConfig(*cfgPath, getenv)
		if err != nil {
			return err
		}
		if o.AppID == "" && c.Bot.AppID != "" {
			o.AppID, fromConfig["AppID"] = c.Bot.AppID, "bot.app_id in "+*cfgPath
		}
		if o.WebsiteURL == "" && c.PublicURL != "" {
			o.WebsiteURL, fromConfig["WebsiteURL"] = c.PublicURL, "public_url in "+*cfgPath
		}
	}
	var pkg bytes.Buffer
	if err := manifest.Build(&pkg, o); err != nil {
		return manifestError(err, fromConfig)
	}
	// Built in memory first: an invalid package never replaces a good one.
	if err := os.WriteFile(*out, pkg.Bytes(), 0o644); err != nil {
		return fmt.Errorf("manifest: --out: %w", err)
	}
	fmt.Fprintf(stdout, "wrote %s (manifest %s, app %s): upload it in Teams (Apps → Manage your apps → Upload an app)\n",
		*out, manifest.SchemaVersion, strings.ToLower(strings.TrimSpace(o.AppID)))
	return nil
}

// manifestError restates Build's field errors by flag, one a line. A
// value taken from the config is named as such, and is not a usage error.
func manifestError(err error, fromConfig map[string]string) error {
	if !errors.Is(err, manifest.ErrInvalidOptions) {
		return err
	}
	var lines []string
	usage := false
	for _, e := range flatten(err) {
		var fe *manifest.FieldError
		if !errors.As(e, &fe) {
			lines = append(lines, e.Error())
			continue
		}
		name := manifestFlag(fe.Option)
		if src, ok := fromConfig[fe.Option]; ok {
			name += " (" + src + ")"
		} else {
			usage = true
		}
		lines = append(lines, name+": "+fe.Problem)
	}
	msg := "manifest: " + strings.Join(lines, "\nmanifest: ")
	if usage {
		return usageError(msg + "\n" + manifestUsage)
	}
	return errors.New(msg)
}

// flatten lists the errors joined in err (one level).
func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
