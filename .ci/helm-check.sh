#!/usr/bin/env bash
# Checks the Helm chart (deploy/helm/gatebot) offline, for .ci/run:
#   1. helm and kubeconform, built with `go install` once and kept in
#      $GATEBOT_TOOLS (default ~/.cache/gatebot-tools) for later runs;
#   2. Kubernetes JSON schemas generated from the API's Go types
#      (deploy/k8sschema), since kubeconform's usual download is GitHub;
#   3. helm lint --strict with every ci/*-values.yaml;
#   4. helm template with each ci values file, and the defaults refused
#      with a message that names the missing credentials;
#   5. kubeconform -strict on everything rendered, after proving on a
#      broken manifest that the schemas reject what they should;
#   6. gatebot config check on the gatebot.yaml each render produces.
set -euo pipefail
cd "$(dirname "$0")/.."

HELM_VERSION=v3.22.0
KUBECONFORM_VERSION=v0.8.0
TOOLS="${GATEBOT_TOOLS:-$HOME/.cache/gatebot-tools}"
CHART=deploy/helm/gatebot

step() { printf '\n==> helm-check: %s\n' "$*"; }
die() { echo "helm-check: $*" >&2; exit 1; }

if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
  export PATH="/usr/local/go/bin:$PATH"
fi
mkdir -p "$TOOLS"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# tool NAME VERSION PACKAGE: the path of NAME at VERSION, built if missing.
# The version is in the file name, so bumping it here rebuilds.
tool() {
  local bin="$TOOLS/$1-$2"
  if [ ! -x "$bin" ]; then
    echo "building $1 $2 (once; cached in $TOOLS)" >&2
    local start=$SECONDS
    GOBIN="$work/gobin" CGO_ENABLED=0 go install -trimpath -ldflags='-s -w' "$3@$2" >&2
    mv "$work/gobin/$1" "$bin"
    echo "built $1 in $((SECONDS - start))s" >&2
  fi
  echo "$bin"
}

step "tools"
helm=$(tool helm "$HELM_VERSION" helm.sh/helm/v3/cmd/helm)
kubeconform=$(tool kubeconform "$KUBECONFORM_VERSION" github.com/yannh/kubeconform/cmd/kubeconform)
"$helm" version --short
"$kubeconform" -v

step "Kubernetes JSON schemas (generated from k8s.io/api by deploy/k8sschema)"
sum=$(cat deploy/k8sschema/main.go deploy/k8sschema/go.mod deploy/k8sschema/go.sum | sha256sum | cut -c1-16)
schemas="$TOOLS/k8s-schemas-$sum"
if [ ! -d "$schemas" ]; then
  (cd deploy/k8sschema && go run . -out "$work/schemas")
  mv "$work/schemas" "$schemas"
fi
ls "$schemas"
location="$schemas/{{ .ResourceKind }}{{ .KindSuffix }}.json"

values=("$CHART"/ci/*-values.yaml)
[ ${#values[@]} -gt 0 ] || die "no $CHART/ci/*-values.yaml"

# The defaults alone are linted in step 4 (helm template must refuse
# them); lint would only log the refusal as INFO.
step "helm lint --strict"
for v in "${values[@]}"; do
  "$helm" lint --strict "$CHART" -f "$v"
done

step "helm template"
if out=$("$helm" template gatebot "$CHART" 2>&1); then
  die "the defaults rendered, but have no credentials: the chart must refuse them"
fi
grep -q "set secrets.appPassword" <<<"$out" || die "the defaults were refused without naming secrets.appPassword: $out"
echo "defaults refused as they should be: ${out%%$'\n'*}"
for v in "${values[@]}"; do
  name=$(basename "$v" -values.yaml)
  "$helm" template gatebot "$CHART" -f "$v" >"$work/$name.yaml"
  echo "$v: $(grep -c '^kind: ' "$work/$name.yaml") resources ($(grep '^kind: ' "$work/$name.yaml" | cut -d' ' -f2 | sort | tr '\n' ' '))"
done

step "kubeconform (strict, offline schemas)"
cat >"$work/broken.yaml" <<'YAML'
apiVersion: apps/v1
kind: Deployment
metadata: {name: broken}
spec:
  replicas: "two"
  selector: {matchLabels: {app: x}}
  template:
    metadata: {labels: {app: x}}
    spec:
      containers:
        - name: x
          image: x
          securityContext: {readOnlyRootFs: true}
YAML
if broken=$("$kubeconform" -strict -schema-location "$location" "$work/broken.yaml" 2>&1); then
  die "kubeconform accepted a broken Deployment: the schemas are not in force"
fi
grep -q "readOnlyRootFs" <<<"$broken" && grep -q "replicas" <<<"$broken" || die "kubeconform missed a problem in the broken Deployment: $broken"
echo "a broken Deployment is rejected (unknown field, wrong type)"
for v in "${values[@]}"; do
  name=$(basename "$v" -values.yaml)
  "$kubeconform" -strict -summary -schema-location "$location" "$work/$name.yaml"
done

step "gatebot config check on the rendered gatebot.yaml"
go build -o "$work/gatebot" ./cmd/gatebot
for v in "${values[@]}"; do
  name=$(basename "$v" -values.yaml)
  "$helm" template gatebot "$CHART" -f "$v" --show-only templates/configmap.yaml |
    awk '/^  gatebot.yaml: \|/ {on=1; next} on && /^    / {print substr($0, 5); next} on && NF {exit}' >"$work/$name.gatebot.yaml"
  [ -s "$work/$name.gatebot.yaml" ] || die "$v: no gatebot.yaml in the rendered ConfigMap"
  # The environment the pod gets from every ci/*-values.yaml (env: and secrets:).
  env -i PATH="$PATH" HOME="$HOME" \
    MICROSOFT_APP_ID=00000000-0000-0000-0000-0000000000a1 MICROSOFT_APP_PASSWORD=x \
    MICROSOFT_APP_TENANT_ID=00000000-0000-0000-0000-0000000000b2 \
    REDIS_URL=redis://redis:6379/0 HUMANITEC_TOKEN=x \
    GATEBOT_CALLBACK_SECRET=whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA== \
    "$work/gatebot" config check "$work/$name.gatebot.yaml" | sed "s|$work/||"
done

step "ok"
