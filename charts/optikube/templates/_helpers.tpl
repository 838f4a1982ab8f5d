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

{{/* The operator's permissions in the namespaces it manages (docs/operator.md "RBAC it needs"), one
resource per rule: tests/chart/test_chart_rbac.py removes each in turn and watches the operator fail. */}}
{{- define "optikube.namespacedRules" -}}
- apiGroups: [optikube.io]
  resources: [optimizationjobs]
  verbs: [list, watch, delete]
- apiGroups: [optikube.io]
  resources: [optimizationjobs/status]
  verbs: [patch]
- apiGroups: [optikube.io]
  resources: [optimizationtrials]
  verbs: [list, watch, create]
- apiGroups: [optikube.io]
  resources: [optimizationtrials/status]
  verbs: [patch]
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

{{/* Images: an empty tag means the chart's appVersion. */}}
{{- define "optikube.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "optikube.trainerImage" -}}
{{- printf "%s:%s" .Values.trainer.image.repository (default .Chart.AppVersion .Values.trainer.image.tag) -}}
{{- end -}}

{{/* The Service trainer pods send their progress to, and its in-cluster URL. */}}
{{- define "optikube.progressURL" -}}
{{- printf "http://%s.%s.svc:%d/v1/progress" (include "optikube.fullname" .) .Release.Namespace (int .Values.ports.progress) -}}
{{- end -}}

{{/* The trainer pods' defaults, the operator's --trainer-defaults file (camelCase keys). */}}
{{- define "optikube.trainerDefaults" -}}
image: {{ include "optikube.trainerImage" . | quote }}
serviceAccount: {{ .Values.trainerServiceAccount.name | quote }}
nodeSelector: {{ .Values.trainer.nodeSelector | toJson }}
tolerations: {{ .Values.trainer.tolerations | toJson }}
gpuNodeSelector: {{ .Values.trainer.gpuNodeSelector | toJson }}
gpuTolerations: {{ .Values.trainer.gpuTolerations | toJson }}
{{- with .Values.trainer.runtimeClassName }}
runtimeClassName: {{ . | quote }}
{{- end }}
imagePullSecrets: {{ .Values.trainer.imagePullSecrets | toJson }}
runAsUser: {{ int .Values.trainer.runAsUser }}
runAsGroup: {{ int .Values.trainer.runAsGroup }}
fsGroup: {{ int .Values.trainer.fsGroup }}
{{- end -}}

{{/* The restricted Pod Security profile, for every pod the chart runs. */}}
{{- define "optikube.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ int .Values.operator.runAsUser }}
runAsGroup: {{ int .Values.operator.runAsGroup }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "optikube.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
{{- end -}}
