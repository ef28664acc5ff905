# Every variable of the original cloudstation pack (Cloudstation-cli v2.0.1), same names, types and
# defaults, so that vars files written for either pack work with both. cs validates each generated
# vars file against this file before running nomad-pack. See README.md for the differences.

variable "job_name" {
  description = "Nomad job ID (empty: the pack name)"
  type        = string
  default     = ""
}

variable "region" {
  description = "Nomad region of the job (empty: the agent's)"
  type        = string
  default     = ""
}

variable "node_pool" {
  description = "Node pool of the job when it asks for no GPU"
  type        = string
  default     = "minions"
}

variable "gpu_type" {
  description = "GPU jobs only: node classes (comma-separated) the job may run on"
  type        = string
  default     = ""
}

variable "datacenters" {
  description = "Datacenters eligible for placement"
  type        = list(string)
  default     = ["*"]
}

variable "private_registry" {
  description = "Vault KV mount of the private registry credentials (also a Vault policy of the task); empty: the shared ACR credentials"
  type        = string
  default     = ""
}

variable "user" {
  description = "User the task runs as (empty: root, \"0\")"
  type        = string
  default     = ""
}

variable "private_registry_provider" {
  description = "Secret name of the private registry credentials under private_registry"
  type        = string
  default     = ""
}

variable "job_config" {
  description = "Job type (service, batch, system, sysbatch), periodic cron, dispatch payload and metadata"
  type = object({
    type             = string
    cron             = string
    prohibit_overlap = bool
    payload          = string
    meta_required    = list(string)
    meta_optional    = list(string)
  })
  default = {
    type             = "service"
    cron             = ""
    prohibit_overlap = true
    payload          = ""
    meta_required    = []
    meta_optional    = []
  }
}

variable "image" {
  description = "Container image to run"
  type        = string
  default     = "mnomitch/hello_world_server"
}

variable "entrypoint" {
  description = "Container entrypoint (empty with args: /bin/sh -c)"
  type        = list(string)
  default     = []
}

variable "args" {
  description = "Container arguments"
  type        = list(string)
  default     = []
}

variable "command" {
  description = "Container command (empty: the image's)"
  type        = string
  default     = ""
}

variable "count" {
  description = "Number of instances"
  type        = number
  default     = 1
}

variable "use_csi_volume" {
  description = "Mount the CSI volume volume_name (one per allocation)"
  type        = bool
  default     = false
}

variable "volume_name" {
  description = "CSI volume ID (also the group volume's name)"
  type        = string
  default     = "volumename"
}

variable "volume_mount_destination" {
  description = "Where the CSI volume is mounted in the task"
  type        = list(string)
  default     = ["/data"]
}

variable "autoscale" {
  description = "Attach the CPU/memory autoscaling policy to the group"
  type        = bool
  default     = false
}

variable "regions" {
  description = "Node classes (comma-separated) the job may run on, for jobs without GPU (empty: any)"
  type        = string
  default     = ""
}

variable "multi_region" {
  description = "Spread the instances over distinct hosts"
  type        = bool
  default     = false
}

variable "config_files" {
  description = "Files written into the task at local/<path> (content base64-encoded) and mounted at /<path>"
  type = list(object({
    path    = string
    content = string
  }))
  default = []
}

variable "script" {
  description = "Shell snippet written to local/script.sh (empty: none)"
  type        = string
  default     = ""
}

variable "secret_path" {
  description = "Vault path of the service's secrets (carried for registry packs)"
  type        = string
  default     = ""
}

variable "shared_secret_path" {
  description = "Project secret whose keys become environment variables (kv/data/<project_id>/<name>)"
  type        = string
  default     = ""
}

variable "uses_kv_engine" {
  description = "The project's secrets live in the shared KV engine (not a dedicated mount)"
  type        = bool
  default     = false
}

variable "owner_uses_kv_engine" {
  description = "The owner's secrets live in the shared KV engine (not a dedicated mount)"
  type        = bool
  default     = false
}

variable "restart_attempts" {
  description = "Restart attempts (the restart object is what the job uses)"
  type        = number
  default     = 2
}

variable "restart_mode" {
  description = "Restart mode (the restart object is what the job uses)"
  type        = string
  default     = "delay"
}

variable "restart" {
  description = "Restart policy of the task group"
  type = object({
    attempts = number
    interval = string
    delay    = string
    mode     = string
  })
  default = {
    attempts = 5
    interval = "3m"
    delay    = "15s"
    mode     = "delay"
  }
}

variable "ephemeral_disk" {
  description = "Ephemeral disk of the task group (only when enabled)"
  type = object({
    enabled = bool
    migrate = bool
    size    = number
    sticky  = bool
  })
  default = {
    enabled = false
    migrate = false
    size    = 300
    sticky  = true
  }
}

variable "privileged" {
  description = "Run the container in privileged mode"
  type        = bool
  default     = false
}

variable "health_check" {
  description = "Unused by the job (checks come from network[].health_check); kept for registry packs"
  type = object({
    path     = string
    interval = string
    timeout  = string
    port     = number
    type     = string
  })
  default = {
    path     = "/"
    interval = "10s"
    timeout  = "30s"
    port     = 8000
    type     = "http"
  }
}

variable "has_vault_policies" {
  description = "Unused by the job; kept for registry packs"
  type        = bool
  default     = false
}

variable "update" {
  description = "Service jobs only: update strategy (blue/green canaries by default; no canary with a CSI volume)"
  type = object({
    min_healthy_time  = string
    healthy_deadline  = string
    progress_deadline = string
    auto_revert       = bool
    auto_promote      = bool
    max_parallel      = number
    canary            = number
    health_check      = string
    stagger           = string
  })
  default = {
    min_healthy_time  = "15s"
    healthy_deadline  = "40m"
    progress_deadline = "1h"
    auto_revert       = true
    auto_promote      = true
    max_parallel      = 1
    canary            = 1
    health_check      = "checks"
    stagger           = "20s"
  }
}

variable "tcp_health_check" {
  description = "Unused by the job (checks come from network[].health_check); kept for registry packs"
  type = object({
    port     = number
    interval = string
    timeout  = string
  })
  default = {
    port     = 6000
    interval = "10s"
    timeout  = "2s"
  }
}

variable "cluster_domain" {
  description = "Cluster domain appended to each port's domain in its urlprefix- tags"
  type        = string
  default     = "cloud-station.app"
}

variable "network" {
  description = "Ports; each becomes the Consul service <consul_service_name>-<name> with a check of health_check.type"
  type = list(object({
    name             = string
    port             = number
    type             = string
    public           = bool
    domain           = string
    custom_domain    = string
    has_health_check = string
    health_check = object({
      type     = string
      path     = string
      interval = string
      timeout  = string
      port     = number
    })
  }))
  default = [{
    name             = "http"
    port             = 8000
    type             = "http"
    public           = false
    domain           = ""
    custom_domain    = ""
    has_health_check = "tcp"
    health_check = {
      type     = "tcp"
      path     = "/"
      interval = "10s"
      timeout  = "30s"
      port     = 80
    }
  }]
}

variable "env_vars" {
  description = "Extra environment variables of the task"
  type = list(object({
    key   = string
    value = string
  }))
  default = []
}

variable "consul_service_name" {
  description = "Consul service name prefix, also the group's name"
  type        = string
  default     = "service"
}

variable "consul_linked_services" {
  description = "Env key <- address of Consul service value (value ending in _HOST: host only; _PORT: port only)"
  type = list(object({
    key   = string
    value = string
  }))
  default = []
}

variable "vault_linked_secrets" {
  description = "Project secrets (kv/data/<project_id>/<secret_path>) whose keys become env variables named <prefix><key>"
  type = list(object({
    prefix      = string
    secret_path = string
  }))
  default = []
}

variable "template" {
  description = "Env name = pattern rendered with Consul service service_name's first instance and linked_vars from kv/data/<project_id>/<service_secret_path>"
  type = list(object({
    name                = string
    pattern             = string
    service_name        = string
    service_secret_path = string
    linked_vars         = list(string)
  }))
  default = []
}

variable "consul_service_port" {
  description = "Unused by the job; kept for registry packs"
  type        = string
  default     = "http"
}

variable "useGpu" {
  description = "Unused by the job; kept for registry packs"
  type        = bool
  default     = false
}

variable "resources" {
  description = "CPU (MHz), memory and memory_max (MB), GPU count (> 0: the gpu-minions pool)"
  type = object({
    cpu        = number
    memory     = number
    gpu        = number
    memory_max = number
  })
  default = {
    cpu        = 200
    memory     = 200
    gpu        = 0
    memory_max = 2000
  }
}

variable "user_id" {
  description = "Owner ID (docker label user_id)"
  type        = string
  default     = ""
}

variable "alloc_id" {
  description = "Deployment ID: the task's name"
  type        = string
  default     = "deployment-xxx"
}

variable "project_id" {
  description = "Project ID: Vault policy and KV folder of the service's secrets"
  type        = string
  default     = ""
}

variable "service_id" {
  description = "Service ID: the service's secret under kv/data/<project_id>/"
  type        = string
  default     = "prj_integ_8d0e89bc-71ad-4f7a-8bb9-ee6c72820248"
}

variable "use_tls" {
  description = "Issue the tls certificates into the task"
  type        = bool
  default     = false
}

variable "tls" {
  description = "Certificates issued by Vault PKI pka_path (common_name, ttl) into cert_path and key_path"
  type = list(object({
    cert_path   = string
    key_path    = string
    common_name = string
    pka_path    = string
    ttl         = string
  }))
  default = [{
    cert_path   = "local/certs/kafka.keystore.pem"
    key_path    = "local/certs/kafka.keystore.key"
    common_name = "backend.clients.kafka.acme.com"
    pka_path    = "kafka-int-ca/issue/kafka-client"
    ttl         = "3h"
  }]
}
