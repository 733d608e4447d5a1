{{/*
The release's base name, at most 63 characters (the DNS-1123 label limit), like the Airflow chart.
*/}}
{{- define "nightshard.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
A component's object name: <fullname>-<component>. When that is longer than 63 characters it is cut
and ends in a hash of the full name, so two long names never collapse into the same one.
Usage: include "nightshard.componentName" (list $ "launcher")
*/}}
{{- define "nightshard.componentName" -}}
{{- $root := index . 0 -}}
{{- $component := index . 1 -}}
{{- $full := printf "%s-%s" (include "nightshard.fullname" $root) $component -}}
{{- include "nightshard.trunc63" $full -}}
{{- end -}}

{{/* Cut a name to 63 characters, keeping it unique with an 8-character hash suffix. */}}
{{- define "nightshard.trunc63" -}}
{{- if le (len .) 63 -}}
{{- . -}}
{{- else -}}
{{- printf "%s-%s" (trunc 54 . | trimSuffix "-") (sha256sum . | trunc 8) -}}
{{- end -}}
{{- end -}}

{{/* Labels on every object of the chart. */}}
{{- define "nightshard.labels" -}}
{{- $root := index . 0 -}}
{{- $component := index . 1 -}}
helm.sh/chart: {{ printf "%s-%s" $root.Chart.Name $root.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ $root.Chart.Name }}
app.kubernetes.io/instance: {{ $root.Release.Name | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/version: {{ $root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ $root.Release.Service }}
app.kubernetes.io/component: {{ $component }}
app.kubernetes.io/part-of: nightshard
{{- with $root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The labels build_worker_pod puts on every worker pod; the NetworkPolicy selects on them. */}}
{{- define "nightshard.workerSelector" -}}
app.kubernetes.io/name: nightshard-worker
{{- end -}}

{{/* Name of the ClusterQueue. */}}
{{- define "nightshard.clusterQueueName" -}}
{{- default (include "nightshard.fullname" .) .Values.kueue.clusterQueue.name -}}
{{- end -}}

{{/* Name of the ResourceFlavor for a flavor entry. Usage: include "nightshard.flavorName" (list $ $flavor) */}}
{{- define "nightshard.flavorName" -}}
{{- $root := index . 0 -}}
{{- $flavor := index . 1 -}}
{{- include "nightshard.componentName" (list $root $flavor.name) -}}
{{- end -}}

{{/* Name of the ProvisioningRequestConfig and AdmissionCheck for DWS queued provisioning. */}}
{{- define "nightshard.provisioningName" -}}
{{- include "nightshard.componentName" (list . "dws") -}}
{{- end -}}

{{/* The namespaces worker pods may run in: the release namespace, then kueue.localQueue.extraNamespaces.
Each gets the LocalQueue, worker ServiceAccount, launcher Role/RoleBinding and NetworkPolicy. */}}
{{- define "nightshard.namespaces" -}}
{{- prepend .Values.kueue.localQueue.extraNamespaces .Release.Namespace | uniq | toJson -}}
{{- end -}}
