{{- define "roost.fullname" -}}
{{ .Release.Name }}-roost
{{- end -}}

{{- define "roost.labels" -}}
app.kubernetes.io/name: roost
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}
