# cs's embedded pack: one Nomad job (service or batch) running one container image.

app {
  url = "https://github.com/thecloudstation/Cloudstation-cli"
}

pack {
  name        = "cloudstation"
  description = "One CloudStation app as a Nomad service or batch job (docker driver)."
  version     = "0.1.0"
}
