[[- /* cs's embedded pack: one app as one Nomad job. Strings go through toJson (valid HCL string
       literals); numbers and bools are printed as they are. Variables: see variables.hcl. */ -]]
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
      }
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
