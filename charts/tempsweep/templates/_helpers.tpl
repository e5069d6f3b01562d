{{/*
The release's full name: the release name when it contains the chart's name ("tempsweep" for a release
named tempsweep, giving the same object names as manifests/), else "<release>-tempsweep".
*/}}
{{- define "tempsweep.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* The labels manifests/ puts on every object, and Helm's own. */}}
{{- define "tempsweep.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/part-of: tempsweep
{{ include "tempsweep.helmLabels" . }}
{{- end -}}

{{/* Helm's bookkeeping labels (the drift test ignores exactly these). */}}
{{- define "tempsweep.helmLabels" -}}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* Selects the operator's pods: its component, and the release so that two releases never share pods. */}}
{{- define "tempsweep.operatorSelector" -}}
app.kubernetes.io/component: operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "tempsweep.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "tempsweep.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name: name the existing ServiceAccount when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "tempsweep.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/*
Refuse values that would run the operator outside its safety rules; each message names the value.
Called once from the Deployment.
*/}}
{{- define "tempsweep.validate" -}}
{{- if and (gt (int .Values.operator.replicas) 1) (not .Values.operator.shards) -}}
{{- fail (printf "operator.replicas: %v replicas without operator.shards would each run every policy's timers; set shards or run 1" .Values.operator.replicas) -}}
{{- end -}}
{{- $roots := .Values.allowedRoots -}}
{{- range $i, $volume := .Values.volumes -}}
{{- if hasKey $volume "hostPath" -}}
{{- fail (printf "volumes[%d] (%s): hostPath is not allowed for the operator: a Deployment would clean whichever node it runs on" $i $volume.name) -}}
{{- end -}}
{{- $under := false -}}
{{- range $roots -}}
{{- if or (eq (trimSuffix "/" .) (trimSuffix "/" $volume.mountPath)) (hasPrefix (printf "%s/" (trimSuffix "/" .)) $volume.mountPath) -}}{{- $under = true -}}{{- end -}}
{{- end -}}
{{- if not $under -}}
{{- fail (printf "volumes[%d] (%s): mountPath %s is not under allowedRoots (%s)" $i $volume.name $volume.mountPath (join ":" $roots)) -}}
{{- end -}}
{{- end -}}
{{- range $name, $_ := .Values.settings -}}
{{- if has $name (list "TEMP_STORAGE_PATH" "ALLOWED_ROOTS" "NAMESPACE_ROOTS" "CLEANUP_DRY_RUN" "WARNING_THRESHOLD" "EMERGENCY_CLEANUP_THRESHOLD" "LOG_CLEANUP_STATS") -}}
{{- fail (printf "settings.%s: set it with its own value (storagePath, allowedRoots, namespaceRoots, dryRun, warningThreshold, emergencyThreshold, logCleanupStats), not in settings" $name) -}}
{{- end -}}
{{- end -}}
{{- range $namespace, $paths := .Values.namespaceRoots -}}
{{- range $paths -}}
{{- $path := . -}}
{{- $under := false -}}
{{- range $roots -}}
{{- if or (eq (trimSuffix "/" .) (trimSuffix "/" $path)) (hasPrefix (printf "%s/" (trimSuffix "/" .)) $path) -}}{{- $under = true -}}{{- end -}}
{{- end -}}
{{- if not $under -}}
{{- fail (printf "namespaceRoots.%s: %s is not under allowedRoots (%s)" $namespace $path (join ":" $roots)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* A namespaceRoots map as NAMESPACE_ROOTS reads it: team-a=/v/a:/v/a2,team-b=/v/b (namespaces sorted). */}}
{{- define "tempsweep.rootsByNamespace" -}}
{{- $entries := list -}}
{{- range $namespace, $paths := . -}}
{{- $entries = append $entries (printf "%s=%s" $namespace (join ":" $paths)) -}}
{{- end -}}
{{- join "," $entries -}}
{{- end -}}

{{/* The TEMP_STORAGE_CLEANUP_* settings shared by the operator and the node agent, as env entries. */}}
{{- define "tempsweep.settingsEnv" -}}
- name: TEMP_STORAGE_CLEANUP_TEMP_STORAGE_PATH
  value: {{ .Values.storagePath | quote }}
# the only paths any policy may clean (colon-separated); the cluster admin decides
- name: TEMP_STORAGE_CLEANUP_ALLOWED_ROOTS
  value: {{ join ":" .Values.allowedRoots | quote }}
{{- with include "tempsweep.rootsByNamespace" .Values.namespaceRoots }}
- name: TEMP_STORAGE_CLEANUP_NAMESPACE_ROOTS
  value: {{ . | quote }}
{{- end }}
# ship safe: every cleanup only reports what it would delete until dryRun is false
- name: TEMP_STORAGE_CLEANUP_CLEANUP_DRY_RUN
  value: {{ .Values.dryRun | toString | quote }}
- name: TEMP_STORAGE_CLEANUP_WARNING_THRESHOLD
  value: {{ .Values.warningThreshold | toString | quote }}
- name: TEMP_STORAGE_CLEANUP_EMERGENCY_CLEANUP_THRESHOLD
  value: {{ .Values.emergencyThreshold | toString | quote }}
- name: TEMP_STORAGE_CLEANUP_LOG_CLEANUP_STATS
  value: {{ .Values.logCleanupStats | toString | quote }}
{{- range $name, $value := .Values.settings }}
- name: TEMP_STORAGE_CLEANUP_{{ $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- end -}}

{{/* Selects the node agent's pods. */}}
{{- define "tempsweep.agentSelector" -}}
app.kubernetes.io/component: node-agent
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "tempsweep.agentServiceAccountName" -}}
{{- if .Values.nodeAgent.serviceAccount.create -}}
{{- default (printf "%s-agent" (include "tempsweep.fullname" .)) .Values.nodeAgent.serviceAccount.name -}}
{{- else -}}
{{- required "nodeAgent.serviceAccount.name: name the existing ServiceAccount when nodeAgent.serviceAccount.create is false" .Values.nodeAgent.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
Refuse node agent values that would mount or clean what no policy may: every allowed root becomes a hostPath
mount, so none may be a system path (the operator's list, tempsweep.models.paths; a test keeps them equal),
and namespace roots must lie under the allowed roots.
*/}}
{{- define "tempsweep.validateNodeAgent" -}}
{{- $agent := .Values.nodeAgent -}}
{{- $system := list "/" "/bin" "/boot" "/dev" "/etc" "/home" "/lib" "/lib32" "/lib64" "/opt" "/proc" "/root" "/run" "/sbin" "/srv" "/sys" "/usr" "/var" "/var/lib" "/var/run" "/var/log" "/tmp" -}}
{{- $trees := list "/proc" "/sys" "/dev" "/etc" "/boot" "/usr" "/bin" "/sbin" "/lib" -}}
{{- range $i, $root := $agent.allowedRoots -}}
{{- $normal := clean $root -}}
{{- $inTree := false -}}
{{- range $trees -}}
{{- if or (eq $normal .) (hasPrefix (printf "%s/" .) $normal) -}}{{- $inTree = true -}}{{- end -}}
{{- end -}}
{{- if or (has $normal $system) $inTree -}}
{{- fail (printf "nodeAgent.allowedRoots[%d]: %s is a system path and is never cleaned (nor mounted from the node)" $i $root) -}}
{{- end -}}
{{- end -}}
{{- range $name, $_ := $agent.settings -}}
{{- if has $name (list "TEMP_STORAGE_PATH" "ALLOWED_ROOTS" "NAMESPACE_ROOTS" "CLEANUP_DRY_RUN") -}}
{{- fail (printf "nodeAgent.settings.%s: set it with its own value (nodeAgent.storagePath, nodeAgent.allowedRoots, nodeAgent.namespaceRoots, dryRun), not in settings" $name) -}}
{{- end -}}
{{- end -}}
{{- range $namespace, $paths := $agent.namespaceRoots -}}
{{- range $paths -}}
{{- $path := . -}}
{{- $under := false -}}
{{- range $agent.allowedRoots -}}
{{- if or (eq (trimSuffix "/" .) (trimSuffix "/" $path)) (hasPrefix (printf "%s/" (trimSuffix "/" .)) $path) -}}{{- $under = true -}}{{- end -}}
{{- end -}}
{{- if not $under -}}
{{- fail (printf "nodeAgent.namespaceRoots.%s: %s is not under nodeAgent.allowedRoots (%s)" $namespace $path (join ":" $agent.allowedRoots)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
