{{/* Names and labels. */}}
{{- define "httvps.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "httvps.fullname" -}}
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

{{- define "httvps.controlPlane.fullname" -}}
{{- printf "%s-control-plane" (include "httvps.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "httvps.gateway.fullname" -}}
{{- printf "%s-gateway" (include "httvps.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "httvps.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "httvps.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Selector labels of one component: (dict "root" $ "component" "gateway"). */}}
{{- define "httvps.selectorLabels" -}}
app.kubernetes.io/name: {{ include "httvps.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "httvps.image" -}}
{{- printf "%s:%s" .image.repository (default .root.Chart.AppVersion .image.tag) }}
{{- end }}

{{/* The Secret the chart renders (tokens, URLs) unless existing Secrets are named. */}}
{{- define "httvps.secretName" -}}
{{- include "httvps.fullname" . }}
{{- end }}

{{/* env entries of the settings that come from Secrets. */}}
{{- define "httvps.databaseUrlEnv" -}}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      {{- if .Values.externalDatabase.existingSecret }}
      name: {{ .Values.externalDatabase.existingSecret }}
      key: {{ .Values.externalDatabase.existingSecretKey }}
      {{- else }}
      name: {{ include "httvps.secretName" . }}
      key: DATABASE_URL
      {{- end }}
{{- end }}

{{- define "httvps.redisUrlEnv" -}}
{{- if or .Values.externalRedis.url .Values.externalRedis.existingSecret }}
- name: REDIS_URL
  valueFrom:
    secretKeyRef:
      {{- if .Values.externalRedis.existingSecret }}
      name: {{ .Values.externalRedis.existingSecret }}
      key: {{ .Values.externalRedis.existingSecretKey }}
      {{- else }}
      name: {{ include "httvps.secretName" . }}
      key: REDIS_URL
      {{- end }}
{{- end }}
{{- end }}

{{/* OpenTelemetry trace export: the standard OTLP variables. */}}
{{- define "httvps.otelEnv" -}}
{{- with .root.Values.otel }}
{{- if .endpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ .endpoint | quote }}
- name: OTEL_EXPORTER_OTLP_PROTOCOL
  value: {{ .protocol | default "grpc" | quote }}
- name: OTEL_SERVICE_NAME
  value: {{ $.service | quote }}
{{- if .sampler }}
- name: OTEL_TRACES_SAMPLER
  value: {{ .sampler | quote }}
{{- end }}
{{- if .samplerArg }}
- name: OTEL_TRACES_SAMPLER_ARG
  value: {{ .samplerArg | quote }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* Extra environment variables from a map, names sorted. */}}
{{- define "httvps.extraEnv" -}}
{{- range $name, $value := . }}
- name: {{ $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- end }}

{{/* Seconds a gateway pod may take to stop: the preStop pause, the drain
     (HTTVPS_GATEWAY_SHUTDOWN_GRACE), the gateway's 3 s close margin, the usage flush
     (HTTVPS_GATEWAY_USAGE_FLUSH_TIMEOUT), and a safety margin. */}}
{{- define "httvps.gateway.terminationGracePeriod" -}}
{{- $d := .Values.gateway.drain }}
{{- add $d.preStopSleepSeconds $d.shutdownGraceSeconds 3 $d.usageFlushTimeoutSeconds $d.extraMarginSeconds }}
{{- end }}
