{{/* The chart's name, and the release's full name (at most 63 characters). */}}
{{- define "optikube.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "optikube.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "optikube.labels" -}}
app.kubernetes.io/name: {{ include "optikube.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: optikube
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "optikube.selectorLabels" -}}
app.kubernetes.io/name: {{ include "optikube.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "optikube.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "optikube.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The operator's permissions in the namespaces it manages (docs/operator.md "RBAC it needs"). */}}
{{- define "optikube.namespacedRules" -}}
- apiGroups: [optikube.io]
  resources: [optimizationjobs]
  verbs: [get, list, watch, patch, delete]
- apiGroups: [optikube.io]
  resources: [optimizationjobs/status, optimizationtrials/status]
  verbs: [patch]
- apiGroups: [optikube.io]
  resources: [optimizationtrials]
  verbs: [list, watch, create]
- apiGroups: [batch]
  resources: [jobs]
  verbs: [list, watch, create, delete]
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [services]
  verbs: [create, delete]
- apiGroups: [""]
  resources: [configmaps]
  verbs: [create, patch, delete]
- apiGroups: [""]
  resources: [serviceaccounts]
  verbs: [create]
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- end -}}
