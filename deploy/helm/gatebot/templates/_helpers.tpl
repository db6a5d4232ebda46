{{/* Chart name, truncated to the 63 characters labels allow. */}}
{{- define "gatebot.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name. */}}
{{- define "gatebot.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "gatebot.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "gatebot.labels" -}}
helm.sh/chart: {{ include "gatebot.chart" . }}
{{ include "gatebot.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "gatebot.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gatebot.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "gatebot.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "gatebot.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret the credentials are read from: the user's, or the chart's. */}}
{{- define "gatebot.secretName" -}}
{{- default (include "gatebot.fullname" .) .Values.secrets.existingSecret }}
{{- end }}

{{/* Whether the config signs in with a managed identity (no client secret). */}}
{{- define "gatebot.managedIdentity" -}}
{{- if dig "bot" "managed_identity" "client_id" "" .Values.config }}true{{ end }}
{{- end }}

{{/* The in-chart Redis's name and URL. */}}
{{- define "gatebot.redisName" -}}
{{- printf "%s-redis" (include "gatebot.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "gatebot.redisSelectorLabels" -}}
app.kubernetes.io/name: {{ include "gatebot.name" . }}-redis
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Refuse, at render time, values that would give pods that cannot start:
missing credentials are named here rather than in a crash loop.
*/}}
{{- define "gatebot.validate" -}}
{{- if not .Values.secrets.existingSecret }}
{{- if and (not .Values.secrets.appPassword) (not (include "gatebot.managedIdentity" .)) }}
{{- fail "set secrets.appPassword (the bot's client secret) or secrets.existingSecret (a Secret with an app-password key), or sign in with config.bot.managed_identity" }}
{{- end }}
{{- if and (not .Values.secrets.redisURL) (not .Values.redis.embedded.enabled) }}
{{- fail "set secrets.redisURL (redis://… or rediss://…), secrets.existingSecret (a Secret with a redis-url key), or redis.embedded.enabled" }}
{{- end }}
{{- end }}
{{- if and (eq (toString (dig "bot" "app_id" "" .Values.config)) "${MICROSOFT_APP_ID}") (not .Values.env.MICROSOFT_APP_ID) }}
{{- fail "set env.MICROSOFT_APP_ID to the Azure Bot's Microsoft App ID (config.bot.app_id reads it)" }}
{{- end }}
{{- if not .Values.config.pipelines }}
{{- fail "config.pipelines is empty: add your providers and pipelines under config (values.yaml shows a demo that needs no CI system)" }}
{{- end }}
{{- if and .Values.podDisruptionBudget.enabled (ge (int .Values.podDisruptionBudget.minAvailable) (int .Values.replicaCount)) }}
{{- fail "podDisruptionBudget.minAvailable must be below replicaCount, or no node could ever be drained" }}
{{- end }}
{{- end }}
