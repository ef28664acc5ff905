# The hello app as a container deploy against a local engine and registry (README: "The demo as a
# container deploy"): csdocker builds the image (Docker's CLI, or podman), docker pushes it to the
# registry at localhost:5000 with a login, and the local `process` platform runs it with `podman run`.
#   cs up -f examples/hello/container.hcl
project = "hello-container"

variable "base_image" {
  type    = "string"
  env     = ["BASE_IMAGE"]
  default = "docker.io/library/python:3.12-alpine"
}
variable "registry_username" {
  type    = "string"
  env     = ["REGISTRY_USERNAME"]
  default = ""
}
variable "registry_password" {
  type      = "string"
  sensitive = true
  env       = ["REGISTRY_PASSWORD"]
  default   = ""
}

app "web" {
  path = "."

  build {
    use        = "csdocker"
    name       = "hello-web"
    tag        = "dev"
    build_args = { BASE = var.base_image }
  }

  registry {
    use      = "docker"
    image    = "localhost:5000/demo/hello-web"
    username = var.registry_username
    password = var.registry_password
  }

  # The pushed image, pulled back from the registry and run on a free port of 127.0.0.1.
  deploy {
    use           = "process"
    start_cmd     = "exec podman run --rm --pull always -p 127.0.0.1:$PORT:8000 localhost:5000/demo/hello-web:dev"
    port          = 0
    ready_timeout = 60
  }

  release {
    use     = "http-check"
    path    = "/"
    timeout = 60
  }
}
