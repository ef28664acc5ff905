[[- /* cs's embedded pack: one app as one Nomad job. Strings go through toJson (valid HCL string
       literals); numbers and bools are printed as they are. Variables: see variables.hcl.
       Free text (and Nomad template code built from it) goes through "cloudstation.hcl_string": toJson,
       then ${ and %{ doubled so that HCL reads them literally. */ -]]
[[- define "cloudstation.hcl_string" -]]
[[- . | toJson | replace "${" "$${" | replace "%{" "%%{" -]]
[[- end -]]
[[- $job := var "job_name" . ]]
[[- $service := coalesce (var "consul_service_name" .) $job ]]
[[- $resources := var "resources" . ]]
[[- $restart := var "restart" . ]]
[[- $update := var "update" . ]]
job [[ $job | toJson ]] {
  type        = [[ var "job_type" . | toJson ]]
  datacenters = [[ var "datacenters" . | toJson ]]
[[- if var "region" . ]]
  region      = [[ var "region" . | toJson ]]
[[- end ]]
[[- if var "node_pool" . ]]
  node_pool   = [[ var "node_pool" . | toJson ]]
[[- end ]]
[[- if var "regions" . ]]

  constraint {
    attribute = "${node.class}"
    operator  = "set_contains_any"
    value     = [[ template "cloudstation.hcl_string" (var "regions" .) ]]
  }
[[- end ]]
[[- if var "meta" . ]]

  meta {
[[- range $key, $value := var "meta" . ]]
    [[ $key ]] = [[ $value | toJson ]]
[[- end ]]
  }
[[- end ]]
[[- if eq (var "job_type" .) "batch" ]]
[[- if var "cron" . ]]

  periodic {
    crons            = [[ list (var "cron" .) | toJson ]]
    prohibit_overlap = [[ var "prohibit_overlap" . ]]
  }
[[- end ]]
[[- if var "meta_required" . ]]

  parameterized {
    meta_required = [[ var "meta_required" . | toJson ]]
  }
[[- end ]]
[[- else ]]

  update {
    max_parallel      = [[ $update.max_parallel ]]
    min_healthy_time  = [[ $update.min_healthy_time | toJson ]]
    healthy_deadline  = [[ $update.healthy_deadline | toJson ]]
    progress_deadline = [[ $update.progress_deadline | toJson ]]
    auto_revert       = [[ $update.auto_revert ]]
    canary            = [[ $update.canary ]]
[[- if gt (float64 $update.canary) 0.0 ]]
    auto_promote      = [[ $update.auto_promote ]]
[[- end ]]
  }
[[- end ]]

  group [[ $service | toJson ]] {
    count = [[ var "count" . ]]

    network {
[[- range $net := var "network" . ]]
      port [[ $net.name | toJson ]] {
        to = [[ $net.port ]]
      }
[[- end ]]
    }
[[- range $volume := var "volumes" . ]]

    volume [[ $volume.name | toJson ]] {
      type            = "csi"
      source          = [[ $volume.source | toJson ]]
      read_only       = [[ $volume.read_only ]]
      access_mode     = "single-node-writer"
      attachment_mode = "file-system"
    }
[[- end ]]
[[- range $net := var "network" . ]]
[[- $tags := var "consul_tags" . ]]
[[- if and $net.public $net.domain ]]
[[- $tags = append $tags (printf "urlprefix-%s/" $net.domain) ]]
[[- end ]]
[[- if and $net.public $net.custom_domain ]]
[[- $tags = append $tags (printf "urlprefix-%s/" $net.custom_domain) ]]
[[- end ]]
[[- $check := $net.health_check ]]

    service {
      name = [[ printf "%s-%s" $service $net.name | toJson ]]
      port = [[ $net.name | toJson ]]
      tags = [[ $tags | toJson ]]
[[- if and $check.type (ne $check.type "none") ]]

      check {
        type     = [[ $check.type | toJson ]]
[[- if eq $check.type "http" ]]
        path     = [[ $check.path | default "/" | toJson ]]
[[- end ]]
        interval = [[ $check.interval | default "10s" | toJson ]]
        timeout  = [[ $check.timeout | default "5s" | toJson ]]
      }
[[- end ]]
    }
[[- end ]]

    restart {
      attempts = [[ $restart.attempts ]]
      interval = [[ $restart.interval | toJson ]]
      delay    = [[ $restart.delay | toJson ]]
      mode     = [[ $restart.mode | toJson ]]
    }

    task [[ $service | toJson ]] {
      driver = "docker"
[[- if var "user" . ]]
      user   = [[ var "user" . | toJson ]]
[[- end ]]

      config {
        image = [[ var "image" . | toJson ]]
[[- if var "network" . ]]
        ports = [ [[- range $index, $net := var "network" . ]][[ if $index ]], [[ end ]][[ $net.name | toJson ]][[- end ]] ]
[[- end ]]
[[- if var "entrypoint" . ]]
        entrypoint = [[ var "entrypoint" . | toJson ]]
[[- end ]]
[[- if var "command" . ]]
        command = [[ var "command" . | toJson ]]
[[- end ]]
[[- if var "args" . ]]
        args = [[ var "args" . | toJson ]]
[[- end ]]
[[- if var "config_files" . ]]
        volumes = [
[[- range $file := var "config_files" . ]]
          [[ template "cloudstation.hcl_string" (printf "local/%s:/%s" $file.path $file.path) ]],
[[- end ]]
        ]
[[- end ]]
[[- if var "private_registry" . ]]

        # registry_username / registry_password: from the private registry template below (Vault)
        auth {
          username = "${registry_username}"
          password = "${registry_password}"
        }
[[- end ]]
      }
[[- if var "vault_policies" . ]]

      vault {
        policies    = [
[[- range $policy := var "vault_policies" . ]]
          [[ template "cloudstation.hcl_string" $policy ]],
[[- end ]]
        ]
        change_mode = "restart"
      }
[[- end ]]
[[- range $file := var "config_files" . ]]

      # config file: its base64 content decoded by Nomad's template engine (never parsed as a template)
      template {
        data        = [[ printf "{{ %s | base64Decode }}" ($file.content | toJson) | toJson ]]
        destination = [[ template "cloudstation.hcl_string" (printf "local/%s" $file.path) ]]
        change_mode = "restart"
      }
[[- end ]]
[[- range $index, $secret := var "vault_env" . ]]

      template {
        data        = [[ template "cloudstation.hcl_string" (printf "{{ with secret %s }}{{ range $key, $value := (or .Data.data .Data) }}%s{{ $key }}={{ $value }}\n{{ end }}{{ end }}" ($secret.path | toJson) $secret.prefix) ]]
        destination = [[ printf "secrets/vault-%d.env" $index | toJson ]]
        change_mode = "noop"
        env         = true
      }
[[- end ]]
[[- if var "template_strings" . ]]
[[- $data := "" ]]
[[- range $string := var "template_strings" . ]]
[[- $body := printf "{{ with service %s }}{{ with index . 0 }}%s=%s\n{{ end }}{{ end }}" ($string.service_name | toJson) $string.name $string.pattern ]]
[[- if $string.secret_path ]]
[[- $binds := "" ]]
[[- range $name := $string.linked_vars ]]
[[- $binds = printf "%s{{ $%s := index .Data.data %s }}" $binds $name ($name | toJson) ]]
[[- end ]]
[[- $body = printf "{{ with secret %s }}%s%s{{ end }}" ($string.secret_path | toJson) $binds $body ]]
[[- end ]]
[[- $data = printf "%s%s" $data $body ]]
[[- end ]]

      template {
        data        = [[ template "cloudstation.hcl_string" $data ]]
        destination = "secrets/template-strings.env"
        change_mode = "restart"
        env         = true
      }
[[- end ]]
[[- if var "consul_linked_services" . ]]
[[- $data := "" ]]
[[- range $linked := var "consul_linked_services" . ]]
[[- $name := $linked.value ]]
[[- $address := "{{ .Address }}:{{ .Port }}" ]]
[[- if hasSuffix "_HOST" $linked.value ]]
[[- $name = trimSuffix "_HOST" $linked.value ]]
[[- $address = "{{ .Address }}" ]]
[[- else if hasSuffix "_PORT" $linked.value ]]
[[- $name = trimSuffix "_PORT" $linked.value ]]
[[- $address = "{{ .Port }}" ]]
[[- end ]]
[[- $data = printf "%s{{ with service %s }}{{ with index . 0 }}%s=%s\n{{ end }}{{ end }}" $data ($name | toJson) $linked.key $address ]]
[[- end ]]

      template {
        data        = [[ template "cloudstation.hcl_string" $data ]]
        destination = "secrets/consul-services.env"
        change_mode = "restart"
        env         = true
      }
[[- end ]]
[[- range $cert := var "tls" . ]]
[[- /* both templates ask Vault with the same arguments: one issued certificate, cert and key match */ -]]
[[- $args := $cert.pka_path | toJson ]]
[[- if $cert.common_name ]]
[[- $args = printf "%s %s" $args (printf "common_name=%s" $cert.common_name | toJson) ]]
[[- end ]]
[[- if $cert.ttl ]]
[[- $args = printf "%s %s" $args (printf "ttl=%s" $cert.ttl | toJson) ]]
[[- end ]]
[[- if $cert.cert_path ]]

      template {
        data        = [[ template "cloudstation.hcl_string" (printf "{{ with secret %s }}{{ .Data.certificate }}{{ end }}" $args) ]]
        destination = [[ template "cloudstation.hcl_string" $cert.cert_path ]]
        perms       = "0644"
        change_mode = "restart"
      }
[[- end ]]
[[- if $cert.key_path ]]

      template {
        data        = [[ template "cloudstation.hcl_string" (printf "{{ with secret %s }}{{ .Data.private_key }}{{ end }}" $args) ]]
        destination = [[ template "cloudstation.hcl_string" $cert.key_path ]]
        perms       = "0644"
        change_mode = "restart"
      }
[[- end ]]
[[- end ]]
[[- if var "private_registry" . ]]
[[- $path := printf "kv/data/%s" (var "private_registry" .) ]]
[[- if var "private_registry_provider" . ]]
[[- $path = printf "%s/%s" $path (var "private_registry_provider" .) ]]
[[- end ]]

      template {
        data        = [[ template "cloudstation.hcl_string" (printf "{{ with secret %s }}registry_username={{ .Data.data.registry_username }}\nregistry_password={{ .Data.data.registry_password }}\n{{ end }}" ($path | toJson)) ]]
        destination = "secrets/private-registry.env"
        change_mode = "noop"
        env         = true
      }
[[- end ]]
[[- if var "env" . ]]

      env {
[[- range $key, $value := var "env" . ]]
        [[ $key ]] = [[ $value | toJson ]]
[[- end ]]
      }
[[- end ]]
[[- range $volume := var "volumes" . ]]

      volume_mount {
        volume      = [[ $volume.name | toJson ]]
        destination = [[ $volume.destination | toJson ]]
        read_only   = [[ $volume.read_only ]]
      }
[[- end ]]

      resources {
        cpu    = [[ $resources.cpu ]]
        memory = [[ $resources.memory ]]
[[- if gt (float64 $resources.memory_max) 0.0 ]]
        memory_max = [[ $resources.memory_max ]]
[[- end ]]
[[- if gt (float64 $resources.gpu) 0.0 ]]

        device "nvidia/gpu" {
          count = [[ $resources.gpu ]]
[[- if var "gpu_model" . ]]

          constraint {
            attribute = "${device.model}"
            value     = [[ var "gpu_model" . | toJson ]]
          }
[[- end ]]
        }
[[- end ]]
      }
    }
  }
}
