# Every variable of the cloudstation pack, with its type. cs validates each generated vars file against
# this file (names and types) before running nomad-pack: keep both in step with the template.

variable "job_name" {
  description = "Nomad job ID (also the default group, task and Consul service name)"
  type        = string
}

variable "image" {
  description = "Container image to run, e.g. reg.example.com/team/web:1.2.3"
  type        = string
}

variable "job_type" {
  description = "Nomad job type: service or batch"
  type        = string
  default     = "service"
}

variable "region" {
  description = "Nomad region (empty: the agent's)"
  type        = string
  default     = ""
}

variable "datacenters" {
  description = "Datacenters eligible for placement"
  type        = list(string)
  default     = ["*"]
}

variable "node_pool" {
  description = "Nomad node pool (empty: the default pool)"
  type        = string
  default     = ""
}

variable "count" {
  description = "Number of instances"
  type        = number
  default     = 1
}

variable "meta" {
  description = "Job metadata (keys must be identifiers), e.g. service_id, deployment_id"
  type        = map(string)
  default     = {}
}

variable "cron" {
  description = "Batch jobs only: run periodically on this cron schedule (empty: not periodic)"
  type        = string
  default     = ""
}

variable "prohibit_overlap" {
  description = "Batch jobs only: do not start a periodic run while the previous one runs"
  type        = bool
  default     = true
}

variable "meta_required" {
  description = "Batch jobs only: dispatch metadata keys a parameterized job requires (empty: not parameterized)"
  type        = list(string)
  default     = []
}

variable "command" {
  description = "Container command (empty: the image's)"
  type        = string
  default     = ""
}

variable "args" {
  description = "Arguments to the command"
  type        = list(string)
  default     = []
}

variable "entrypoint" {
  description = "Container entrypoint (empty: the image's)"
  type        = list(string)
  default     = []
}

variable "user" {
  description = "User the task runs as (empty: the image's)"
  type        = string
  default     = ""
}

variable "resources" {
  description = "CPU (MHz), memory and memory_max (MB; 0: no oversubscription) and GPU count"
  type = object({
    cpu        = number
    memory     = number
    memory_max = number
    gpu        = number
  })
  default = {
    cpu        = 200
    memory     = 256
    memory_max = 0
    gpu        = 0
  }
}

variable "gpu_model" {
  description = "Required GPU model when resources.gpu > 0 (empty: any)"
  type        = string
  default     = ""
}

variable "network" {
  description = "Ports the container listens on; each becomes a Consul service with an optional health check"
  type = list(object({
    name          = string
    port          = number
    type          = string
    public        = bool
    domain        = string
    custom_domain = string
    health_check = object({
      type     = string
      path     = string
      interval = string
      timeout  = string
    })
  }))
  default = []
}

variable "env" {
  description = "Environment variables of the task (names must be identifiers)"
  type        = map(string)
  default     = {}
}

variable "volumes" {
  description = "CSI volumes to mount"
  type = list(object({
    name        = string
    source      = string
    destination = string
    read_only   = bool
  }))
  default = []
}

variable "consul_service_name" {
  description = "Consul service name prefix (empty: the job name)"
  type        = string
  default     = ""
}

variable "consul_tags" {
  description = "Extra tags on every Consul service of the job"
  type        = list(string)
  default     = []
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
    attempts = 2
    interval = "30m"
    delay    = "15s"
    mode     = "fail"
  }
}

variable "update" {
  description = "Service jobs only: rolling update strategy"
  type = object({
    max_parallel      = number
    min_healthy_time  = string
    healthy_deadline  = string
    progress_deadline = string
    auto_revert       = bool
    canary            = number
    auto_promote      = bool
  })
  default = {
    max_parallel      = 1
    min_healthy_time  = "10s"
    healthy_deadline  = "5m"
    progress_deadline = "10m"
    auto_revert       = true
    canary            = 0
    auto_promote      = false
  }
}

variable "regions" {
  description = "Comma-separated node classes the job may run on (a set_contains_any constraint on the node class; empty: any)"
  type        = string
  default     = ""
}

variable "config_files" {
  description = "Files written into the task at local/<path> (content base64-encoded) and mounted at /<path>"
  type = list(object({
    path    = string
    content = string
  }))
  default = []
}

variable "vault_policies" {
  description = "Vault policies of the task's token (needed by the Vault-backed templates below; empty: no vault block)"
  type        = list(string)
  default     = []
}

variable "vault_env" {
  description = "Vault KV secrets (paths) whose keys become task environment variables, each name prefixed with prefix"
  type = list(object({
    path   = string
    prefix = string
  }))
  default = []
}

variable "template_strings" {
  description = "Environment variables rendered from a Nomad template pattern, with Consul service service_name's first instance in scope and each of linked_vars bound ($NAME) to that key of the KV secret secret_path (empty: none)"
  type = list(object({
    name         = string
    pattern      = string
    service_name = string
    secret_path  = string
    linked_vars  = list(string)
  }))
  default = []
}

variable "tls" {
  description = "Certificates issued by a Vault PKI role (pka_path) and written into the task at cert_path and key_path"
  type = list(object({
    cert_path   = string
    key_path    = string
    common_name = string
    pka_path    = string
    ttl         = string
  }))
  default = []
}

variable "consul_linked_services" {
  description = "Environment variable key <- the address of Consul service value (a value ending in _HOST: the host only; _PORT: the port only; else host:port)"
  type = list(object({
    key   = string
    value = string
  }))
  default = []
}

variable "private_registry" {
  description = "Pull the image with credentials from the Vault KV secret kv/data/<private_registry>/<private_registry_provider> (keys registry_username and registry_password); also a Vault policy of the task"
  type        = string
  default     = ""
}

variable "private_registry_provider" {
  description = "See private_registry"
  type        = string
  default     = ""
}
