[[- /* cs's embedded cloudstation pack: the job the original cloudstation pack (Cloudstation-cli v2.0.1)
       renders for the same variables, with the fixes README.md lists. Variables: variables.hcl. */ -]]
[[- $root := . ]]
[[- $jobType := var "job_config.type" . ]]
[[- $gpu := var "resources.gpu" . ]]
[[- $service := var "consul_service_name" . ]]
[[- $cluster := var "cluster_domain" . ]]
[[- $project := var "project_id" . ]]
[[- $networks := var "network" . ]]
[[- $jobName := var "job_name" . ]]
[[- if eq $jobName "" ]][[ $jobName = meta "pack.name" . ]][[ end ]]
[[- /* Nomad template code: a KV v2 secret's keys as env lines <prefix>KEY=value (path, prefix) */ -]]
[[- $kvEnv := "{{ with secret %s }}{{ range $key, $value := .Data.data }}%s{{ $key }}={{ $value }}\n{{ end }}{{ end }}\n" ]]
job [[ template "cs.q" $jobName ]] {
  meta {
    run_uuid = "${uuidv4()}"
  }
[[- if gt $gpu 0 ]]
  node_pool = "gpu-minions"
[[- if var "gpu_type" . ]]

  constraint {
    attribute = "${node.class}"
    operator  = "set_contains_any"
    value     = [[ template "cs.q" (var "gpu_type" .) ]]
  }
[[- end ]]
[[- else if var "node_pool" . ]]
  node_pool = [[ template "cs.q" (var "node_pool" .) ]]
[[- end ]]
[[- if and (var "regions" .) (eq $gpu 0) ]]

  constraint {
    attribute = "${node.class}"
    operator  = "set_contains_any"
    value     = [[ template "cs.q" (var "regions" .) ]]
  }
[[- end ]]
[[- if var "multi_region" . ]]

  constraint {
    distinct_hosts = true
  }
[[- end ]]
[[- if ne (var "region" .) "" ]]
  region = [[ template "cs.q" (var "region" .) ]]
[[- end ]]
  datacenters = [[ var "datacenters" . | toJson ]]
  type        = [[ template "cs.q" $jobType ]]
[[- if var "job_config.cron" . ]]

  periodic {
    cron             = [[ template "cs.q" (var "job_config.cron" .) ]]
    prohibit_overlap = [[ var "job_config.prohibit_overlap" . ]]
  }
[[- end ]]
[[- if var "job_config.meta_required" . ]]

  parameterized {
    payload       = [[ template "cs.q" (var "job_config.payload" .) ]]
    meta_required = [[ var "job_config.meta_required" . | toJson ]]
[[- if var "job_config.meta_optional" . ]]
    meta_optional = [[ var "job_config.meta_optional" . | toJson ]]
[[- end ]]
  }
[[- end ]]

  vault {
[[- if var "private_registry" . ]]
    policies    = [[ compact (list (var "private_registry" .) $project) | toJson ]]
[[- else ]]
    policies    = [[ compact (list $project "acr") | toJson ]]
[[- end ]]
    change_mode = "restart"
  }
[[- if eq $jobType "service" ]]
[[- $update := var "update" . ]]

  update {
    max_parallel      = [[ $update.max_parallel ]]
    min_healthy_time  = [[ template "cs.q" $update.min_healthy_time ]]
    healthy_deadline  = [[ template "cs.q" $update.healthy_deadline ]]
    progress_deadline = [[ template "cs.q" $update.progress_deadline ]]
    auto_revert       = [[ $update.auto_revert ]]
    stagger           = [[ template "cs.q" $update.stagger ]]
    health_check      = [[ template "cs.q" $update.health_check ]]
[[- if var "use_csi_volume" . ]]
    auto_promote      = false
    canary            = 0
[[- else ]]
    auto_promote      = [[ $update.auto_promote ]]
    canary            = [[ $update.canary ]]
[[- end ]]
  }

  migrate {
    max_parallel     = 2
    health_check     = "checks"
    min_healthy_time = [[ template "cs.q" $update.min_healthy_time ]]
    healthy_deadline = [[ template "cs.q" $update.healthy_deadline ]]
  }
[[- end ]]

  group [[ template "cs.q" $service ]] {
    count = [[ var "count" . ]]
[[- if var "use_csi_volume" . ]]

    volume [[ template "cs.q" (var "volume_name" .) ]] {
      type            = "csi"
      source          = [[ template "cs.q" (var "volume_name" .) ]]
      read_only       = false
      access_mode     = "single-node-writer"
      attachment_mode = "file-system"
      per_alloc       = true
    }
[[- end ]]
[[- if var "ephemeral_disk.enabled" . ]]

    ephemeral_disk {
      migrate = [[ var "ephemeral_disk.migrate" . ]]
      size    = [[ var "ephemeral_disk.size" . ]]
      sticky  = [[ var "ephemeral_disk.sticky" . ]]
    }
[[- end ]]

    network {
[[- range $net := $networks ]]
      port [[ template "cs.q" $net.name ]] {
        to = [[ $net.port ]]
      }
[[- end ]]
    }
[[- range $net := $networks ]]
[[- $check := $net.health_check ]]
[[- /* the check's port: the label of the port whose number is health_check.port, else this port's */ -]]
[[- $checkPort := $net.name ]]
[[- $found := false ]]
[[- range $other := $networks ]]
[[- if and (not $found) (eq (int $other.port) (int $check.port)) ]]
[[- $checkPort = $other.name ]]
[[- $found = true ]]
[[- end ]]
[[- end ]]

    service {
      name = [[ template "cs.q" (printf "%s-%s" $service $net.name) ]]
      port = [[ template "cs.q" $net.name ]]
[[- if ne $check.type "none" ]]

      check {
        type     = [[ template "cs.q" $check.type ]]
[[- if eq $check.type "http" ]]
        path     = [[ template "cs.q" (default "/" $check.path) ]]
[[- end ]]
        interval = [[ template "cs.q" $check.interval ]]
        timeout  = [[ template "cs.q" $check.timeout ]]
        port     = [[ template "cs.q" $checkPort ]]
      }
[[- end ]]
[[- if $net.public ]]
[[- $tags := list "blue" ]]
[[- $canary := list "green" ]]
[[- if ne $net.domain "" ]]
[[- $fqdn := printf "%s.%s" $net.domain $cluster ]]
[[- if or (eq $cluster "") (eq $net.domain $cluster) (hasSuffix (printf ".%s" $cluster) $net.domain) ]]
[[- $fqdn = $net.domain ]]
[[- end ]]
[[- $tags = append $tags (printf "urlprefix-%s" $fqdn) ]]
[[- $canary = append $canary (printf "urlprefix-canary-%s" $fqdn) ]]
[[- end ]]
[[- if ne $net.custom_domain "" ]]
[[- $tags = append $tags (printf "custom-%s" $net.custom_domain) ]]
[[- $canary = append $canary (printf "custom-canary-%s" $net.custom_domain) ]]
[[- end ]]
[[- if eq $net.type "tcp" ]]
[[- $tags = append $tags "tcp-lb" ]]
[[- end ]]

      tags        = [[ $tags | toJson | replace "%{" "%%{" ]]
      canary_tags = [[ $canary | toJson | replace "%{" "%%{" ]]
[[- else ]]

      tags = ["blue"]
[[- end ]]
    }
[[- else ]]

    service {
      name = [[ template "cs.q" $service ]]
      tags = [[ list (printf "urlprefix-%s.internal.%s" $service $cluster) | toJson | replace "%{" "%%{" ]]
    }
[[- end ]]
[[- $restart := var "restart" . ]]

    restart {
      attempts = [[ $restart.attempts ]]
      interval = [[ template "cs.q" $restart.interval ]]
      delay    = [[ template "cs.q" $restart.delay ]]
      mode     = [[ template "cs.q" $restart.mode ]]
    }

    task [[ template "cs.q" (var "alloc_id" .) ]] {
      driver = "docker"
      user   = [[ template "cs.q" (default "0" (var "user" .)) ]]
[[- if var "use_csi_volume" . ]]
[[- range $dest := var "volume_mount_destination" . ]]

      volume_mount {
        volume      = [[ template "cs.q" (var "volume_name" $root) ]]
        destination = [[ template "cs.q" $dest ]]
        read_only   = false
      }
[[- end ]]
[[- end ]]

      config {
        image              = [[ template "cs.q" (var "image" .) ]]
        image_pull_timeout = "30m"
[[- if var "privileged" . ]]
        privileged         = true
[[- end ]]
[[- if or (regexMatch ".*acrbc001.azurecr.io/.*" (var "image" .)) (var "private_registry" .) ]]

        # registry_username / registry_password: from the private registry template below (Vault)
        auth {
          username = "${registry_username}"
          password = "${registry_password}"
        }
[[- end ]]
[[- if or (var "args" .) (var "entrypoint" .) ]]
[[- if var "entrypoint" . ]]
        entrypoint = [[ var "entrypoint" . | toJson | replace "%{" "%%{" ]]
[[- else ]]
        entrypoint = ["/bin/sh", "-c"]
[[- end ]]
[[- if var "args" . ]]
        args       = [[ var "args" . | toJson | replace "%{" "%%{" ]]
[[- end ]]
[[- end ]]
[[- if var "command" . ]]
        command    = [[ template "cs.q" (var "command" .) ]]
[[- end ]]
[[- if $networks ]]
[[- $ports := list ]]
[[- range $net := $networks ]][[ $ports = append $ports $net.name ]][[ end ]]
        ports      = [[ $ports | toJson ]]
[[- end ]]
[[- if var "config_files" . ]]
        volumes    = [
[[- range $file := var "config_files" . ]]
[[- $path := trimPrefix "/" $file.path ]]
          [[ template "cs.lit" (printf "local/%s:/%s" $path $path) ]],
[[- end ]]
        ]
[[- end ]]

        labels = {
          job        = [[ template "cs.q" $jobName ]]
          group      = [[ template "cs.q" $service ]]
          task       = [[ template "cs.q" $service ]]
          alloc_id   = "${NOMAD_ALLOC_ID}"
          user_id    = [[ template "cs.q" (var "user_id" .) ]]
          project_id = [[ template "cs.q" $project ]]
          service_id = [[ template "cs.q" (var "service_id" .) ]]
        }
      }
[[- if var "env_vars" . ]]

      env = {
[[- range $env := var "env_vars" . ]]
        [[ template "cs.q" $env.key ]] = [[ template "cs.q" $env.value ]]
[[- end ]]
      }
[[- end ]]

      # the service's own secrets (always)
      template {
        data        = [[ template "cs.lit" (printf $kvEnv (printf "/kv/data/%s/%s" $project (var "service_id" .) | toJson) "") ]]
        destination = "secrets/file.env"
        change_mode = "noop"
        env         = true
      }
[[- if var "shared_secret_path" . ]]

      # the project's shared secrets
      template {
        data        = [[ template "cs.lit" (printf $kvEnv (printf "/kv/data/%s/%s" $project (var "shared_secret_path" .) | toJson) "") ]]
        destination = "secrets/shared-secrets.env"
        change_mode = "noop"
        env         = true
      }
[[- end ]]
[[- range $index, $linked := var "vault_linked_secrets" . ]]

      # a linked secret, its keys prefixed
      template {
        data        = [[ template "cs.lit" (printf $kvEnv (printf "/kv/data/%s/%s" $project $linked.secret_path | toJson) $linked.prefix) ]]
        destination = [[ printf "secrets/linked-%d.env" $index | toJson ]]
        change_mode = "noop"
        env         = true
      }
[[- end ]]

      # registry credentials (registry_username, registry_password) for the docker auth block
      template {
[[- if var "private_registry" . ]]
        data        = [[ template "cs.lit" (printf $kvEnv (printf "/kv/data/%s/%s" (var "private_registry" .) (var "private_registry_provider" .) | toJson) "") ]]
[[- else ]]
        data        = [[ template "cs.lit" (printf $kvEnv ("/acr/data/registry" | toJson) "") ]]
[[- end ]]
        destination = "private_registry/file.env"
        change_mode = "noop"
        env         = true
      }
[[- if var "script" . ]]

      template {
        data        = [[ template "cs.lit" (printf "#!/bin/ash\n%s\nexec \"$@\"\n" (var "script" .)) ]]
        destination = "local/script.sh"
        change_mode = "restart"
        env         = false
        perms       = "777"
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
[[- $data = printf "%s{{ with service %s }}{{ if . }}{{ with index . 0 }}%s=%s\n{{ end }}{{ end }}{{ end }}" $data ($name | toJson) $linked.key $address ]]
[[- end ]]

      # linked Consul services' addresses
      template {
        data        = [[ template "cs.lit" $data ]]
        destination = "secrets/consul_services.env"
        change_mode = "restart"
        env         = true
      }
[[- end ]]
[[- if var "template" . ]]
[[- $data := "" ]]
[[- range $item := var "template" . ]]
[[- $binds := "" ]]
[[- range $name := $item.linked_vars ]]
[[- if regexMatch "^[A-Za-z_][A-Za-z0-9_]*$" $name ]]
[[- $binds = printf "%s{{ $%s := index .Data.data %s }}" $binds $name ($name | toJson) ]]
[[- end ]]
[[- end ]]
[[- $line := printf "{{ with service %s }}{{ if . }}{{ with index . 0 }}%s= %s\n{{ end }}{{ end }}{{ end }}" ($item.service_name | toJson) $item.name ($item.pattern | quote) ]]
[[- $data = printf "%s{{ with secret %s }}%s%s{{ end }}\n" $data (printf "/kv/data/%s/%s" $project $item.service_secret_path | toJson) $binds $line ]]
[[- end ]]

      # connection strings built from linked services and their secrets
      template {
        data        = [[ template "cs.lit" $data ]]
        destination = "secrets/connection.env"
        change_mode = "restart"
        env         = true
      }
[[- end ]]
[[- if var "use_tls" . ]]
[[- range $cert := var "tls" . ]]
[[- $args := $cert.pka_path | toJson ]]
[[- if $cert.common_name ]]
[[- $args = printf "%s %s" $args (printf "common_name=%s" $cert.common_name | toJson) ]]
[[- end ]]
[[- if $cert.ttl ]]
[[- $args = printf "%s %s" $args (printf "ttl=%s" $cert.ttl | toJson) ]]
[[- end ]]

      template {
        data        = [[ template "cs.lit" (printf "{{ with secret %s }}{{ .Data.certificate }}{{ end }}\n" $args) ]]
        destination = [[ template "cs.lit" $cert.cert_path ]]
        perms       = "777"
      }

      template {
        data        = [[ template "cs.lit" (printf "{{ with secret %s }}{{ .Data.private_key }}{{ end }}\n" $args) ]]
        destination = [[ template "cs.lit" $cert.key_path ]]
        perms       = "777"
      }
[[- end ]]
[[- end ]]
[[- range $file := var "config_files" . ]]

      # a config file: its base64 content decoded by Nomad (never parsed as a template)
      template {
        data        = [[ template "cs.lit" (printf "{{ %s | base64Decode }}" ($file.content | toJson)) ]]
        destination = [[ template "cs.lit" (printf "local/%s" (trimPrefix "/" $file.path)) ]]
        env         = false
      }
[[- end ]]
[[- $resources := var "resources" . ]]

      resources {
        cpu        = [[ $resources.cpu ]]
        memory     = [[ $resources.memory ]]
        memory_max = [[ $resources.memory_max ]]
[[- if gt $gpu 0 ]]

        device "letmutx/gpu" {
          count = [[ $gpu ]]
        }
[[- end ]]
      }
    }
[[- if var "autoscale" . ]]

    scaling {
      enabled = true
      min     = 1
      max     = 3

      policy {
        cooldown            = "5m"
        evaluation_interval = "1m"

        check "cpu_usage" {
          source = "prometheus"
          query  = [[ template "cs.lit" (printf "avg(nomad_client_allocs_cpu_total_percent{exported_job=%s})" ($service | toJson)) ]]

          strategy "target-value" {
            target    = 90
            threshold = 0.4
          }
        }

        check "memory_usage" {
          source = "prometheus"
          query  = [[ template "cs.lit" (printf "avg(nomad_client_allocs_memory_usage{exported_job=%s}) / 1024 / 1024" ($service | toJson)) ]]

          strategy "target-value" {
            target    = 240
            threshold = 0.4
          }
        }
      }
    }
[[- end ]]
  }
}
