// Command k8sschema writes strict JSON schemas for the Kubernetes kinds the
// gatebot Helm chart renders, in the layout kubeconform reads with
//
//	-schema-location 'DIR/{{ .ResourceKind }}{{ .KindSuffix }}.json'
//
// kubeconform's usual schemas are downloaded from GitHub, which CI cannot
// reach; these are made offline from the API types themselves (k8s.io/api
// and the Prometheus Operator's ServiceMonitor), the same Go types the API
// server's OpenAPI document is generated from. Like that generator, a field
// whose JSON name has no omitempty is required; every object refuses
// unknown fields. It is a separate module so the bot's go.mod does not
// carry the Kubernetes API.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// kinds are the resources the chart may render.
var kinds = []struct {
	apiVersion, kind string
	obj              any
}{
	{"apps/v1", "Deployment", appsv1.Deployment{}},
	{"apps/v1", "StatefulSet", appsv1.StatefulSet{}},
	{"v1", "Service", corev1.Service{}},
	{"v1", "ConfigMap", corev1.ConfigMap{}},
	{"v1", "Secret", corev1.Secret{}},
	{"v1", "ServiceAccount", corev1.ServiceAccount{}},
	{"policy/v1", "PodDisruptionBudget", policyv1.PodDisruptionBudget{}},
	{"networking.k8s.io/v1", "Ingress", networkingv1.Ingress{}},
	{"monitoring.coreos.com/v1", "ServiceMonitor", monitoringv1.ServiceMonitor{}},
}

func main() {
	out := flag.String("out", "", "directory to write the schemas to")
	flag.Parse()
	if *out == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: k8sschema -out DIR")
		os.Exit(2)
	}
	if err := write(*out); err != nil {
		fmt.Fprintln(os.Stderr, "k8sschema:", err)
		os.Exit(1)
	}
}

func write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, k := range kinds {
		g := &generator{defs: map[string]schema{}}
		root := g.object(reflect.TypeOf(k.obj))
		// apiVersion and kind must name exactly this kind.
		props := root["properties"].(map[string]schema)
		props["apiVersion"] = schema{"type": "string", "enum": []string{k.apiVersion}}
		props["kind"] = schema{"type": "string", "enum": []string{k.kind}}
		root["required"] = mergeRequired(root["required"], "apiVersion", "kind")
		root["definitions"] = g.defs
		b, err := json.MarshalIndent(root, "", " ")
		if err != nil {
			return err
		}
		path := filepath.Join(dir, fileName(k.apiVersion, k.kind))
		if err := os.WriteFile(path, b, 0o644); err != nil {
			return err
		}
		fmt.Println("wrote", path)
	}
	return nil
}

// fileName follows kubeconform's {{ .ResourceKind }}{{ .KindSuffix }}:
// the lower-case kind, then "-" and the first label of the group, then
// "-" and the version.
func fileName(apiVersion, kind string) string {
	group, version, ok := strings.Cut(apiVersion, "/")
	suffix := "-" + strings.ToLower(strings.Split(group, ".")[0])
	if ok {
		suffix += "-" + strings.ToLower(version)
	}
	return strings.ToLower(kind) + suffix + ".json"
}

func mergeRequired(existing any, names ...string) []string {
	req, _ := existing.([]string)
	for _, n := range names {
		if !contains(req, n) {
			req = append(req, n)
		}
	}
	sort.Strings(req)
	return req
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

type schema map[string]any

// generator turns Go types into JSON schemas; named struct types become
// definitions referred to by $ref, so each is written once.
type generator struct {
	defs map[string]schema
}

// openAPITyped is how apimachinery types that marshal as something other
// than their Go shape (Quantity, IntOrString, Time) describe themselves.
type (
	oneOfTyped   interface{ OpenAPIV3OneOfTypes() []string }
	openAPITyped interface {
		OpenAPISchemaType() []string
		OpenAPISchemaFormat() string
	}
)

var rawExtension = reflect.TypeFor[runtime.RawExtension]()

func (g *generator) typeSchema(t reflect.Type) schema {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	v := reflect.New(t).Interface()
	if o, ok := v.(oneOfTyped); ok {
		return schema{"type": o.OpenAPIV3OneOfTypes()}
	}
	if o, ok := v.(openAPITyped); ok {
		s := schema{"type": o.OpenAPISchemaType()}
		if f := o.OpenAPISchemaFormat(); f != "" && f != "int-or-string" {
			s["format"] = f
		}
		return s
	}
	if t == rawExtension {
		return schema{}
	}
	switch t.Kind() {
	case reflect.Struct:
		if t.NumField() == 0 || (t.Name() == "JSON" && t.NumField() == 1) {
			// apiextensions JSON and similar free-form values.
			return schema{}
		}
		name := strings.ReplaceAll(t.PkgPath(), "/", ".") + "." + t.Name()
		if _, ok := g.defs[name]; !ok {
			g.defs[name] = nil // reserve: types may refer to themselves
			g.defs[name] = g.object(t)
		}
		return schema{"$ref": "#/definitions/" + name}
	case reflect.Map:
		return schema{"type": "object", "additionalProperties": g.typeSchema(t.Elem())}
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return schema{"type": "string"} // base64
		}
		return schema{"type": "array", "items": g.typeSchema(t.Elem())}
	case reflect.String:
		return schema{"type": "string"}
	case reflect.Bool:
		return schema{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return schema{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return schema{"type": "number"}
	case reflect.Interface:
		return schema{}
	}
	panic(fmt.Sprintf("k8sschema: no schema for %s", t))
}

// object is the schema of a struct's JSON fields, inline ones included.
func (g *generator) object(t reflect.Type) schema {
	props := map[string]schema{}
	var required []string
	g.fields(t, props, &required)
	sort.Strings(required)
	s := schema{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		s["required"] = required
	}
	return s
}

func (g *generator) fields(t reflect.Type, props map[string]schema, required *[]string) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		if name == "" && (f.Anonymous || strings.Contains(opts, "inline")) {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				g.fields(ft, props, required)
				continue
			}
		}
		if name == "" {
			name = f.Name
		}
		optional := strings.Contains(opts, "omitempty") || strings.Contains(opts, "omitzero")
		s := g.typeSchema(f.Type)
		if optional {
			s = nullable(s)
		} else {
			*required = append(*required, name)
		}
		props[name] = s
	}
}

// nullable lets an optional scalar, list or map be written as null, as the
// API server accepts (`annotations: null`).
func nullable(s schema) schema {
	switch typ := s["type"].(type) {
	case string:
		out := clone(s)
		out["type"] = []string{typ, "null"}
		return out
	case []string:
		out := clone(s)
		out["type"] = append(append([]string(nil), typ...), "null")
		return out
	}
	// Objects ($ref) stay non-null: a rendered chart never writes
	// `spec: null`, and anyOf would bury every error under "want null".
	return s
}

func clone(s schema) schema {
	out := schema{}
	for k, v := range s {
		out[k] = v
	}
	return out
}
