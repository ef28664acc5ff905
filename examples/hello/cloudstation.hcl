# The embedded demo: build with a shell command, run as a local supervised process, release when it
# answers HTTP. Runs on any machine with python3; no registry, no cluster.
#   cs deploy web     (from this directory)
project = "hello"

app "web" {
  path = "."

  # Copies the app into build/ and stamps a version; the artifact is the build/ directory.
  build {
    use       = "exec"
    build_cmd = "rm -rf build && mkdir build && cp server.py build/ && (git rev-parse --short HEAD 2>/dev/null || echo dev) > build/VERSION"
    output    = "build"
  }

  # Runs from build/ as a detached process on a free port (PORT is set for it).
  deploy {
    use           = "process"
    start_cmd     = "exec python3 server.py"
    port          = 0
    ready_timeout = 15
  }

  # Released once it answers 2xx.
  release {
    use     = "http-check"
    path    = "/"
    timeout = 15
  }
}
