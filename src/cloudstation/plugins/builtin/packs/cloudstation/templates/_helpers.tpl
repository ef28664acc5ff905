[[- /* Helpers of cs's embedded cloudstation pack (not rendered on their own). */ -]]

[[- /* A string as an HCL string literal: JSON quoting; "%{" doubled so HCL never reads a template
       directive. "${" is kept: Nomad interpolates ${NOMAD_...}, ${node.class}, ... at run time, as in the
       original pack. */ -]]
[[- define "cs.q" -]]
[[- . | toString | toJson | replace "%{" "%%{" -]]
[[- end -]]

[[- /* A string HCL must take literally (Nomad template code, file contents): "${" doubled too. */ -]]
[[- define "cs.lit" -]]
[[- . | toString | toJson | replace "${" "$${" | replace "%{" "%%{" -]]
[[- end -]]

