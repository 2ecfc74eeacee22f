# Fabio: a system job on every client, routing by the `urlprefix-` tags of
# healthy Consul services (Prometheus at /prometheus, Alertmanager at
# /alertmanager, Grafana at /grafana, …). It reads Consul over mTLS with a
# workload-identity token and exposes its own metrics for Prometheus.

variable "runtime" {
  type        = string
  default     = "docker"
  description = "docker (pinned image) or exec (the fabio binary installed on clients by bootstrap, run by raw_exec)"
  validation {
    condition     = contains(["docker", "exec"], var.runtime)
    error_message = "The runtime must be \"docker\" or \"exec\"."
  }
}

variable "image" {
  type    = string
  default = "fabiolb/fabio:1.6.3"
}

locals {
  docker = var.runtime == "docker"
}

job "fabio" {
  namespace   = "platform"
  type        = "system"
  datacenters = ["*"]

  group "fabio" {
    network {
      port "http" {
        static = 9999
      }
      port "ui" {
        static = 9998
      }
      port "metrics" {
        static = 9997
      }
    }

    # Deployment health (jobs/README.md, "Deployment health"): a system job has no
    # reschedule, so Nomad fails the whole deployment on the first allocation it marks
    # unhealthy. A slow start on a busy node must therefore not count as unhealthy,
    # while a task that never stays up still fails well inside bootstrap's 5 minutes.
    update {
      max_parallel      = 1
      health_check      = "checks"
      min_healthy_time  = "5s"  # one more passing check after the first (bootstrap waits for it)
      healthy_deadline  = "3m"  # healthy starts took 8-18 s on a loaded 2-core machine
      progress_deadline = "4m"  # Nomad's verdict comes before bootstrap's 5-minute wait
    }

    # Nomad's default for system jobs fails the task after 2 restarts in 30 minutes,
    # and a failed task is an unhealthy allocation at once: keep restarting instead and
    # let healthy_deadline decide.
    restart {
      attempts = 3
      interval = "1m"
      delay    = "5s"
      mode     = "delay"
    }

    service {
      name     = "fabio"
      port     = "metrics"
      provider = "consul"
      tags     = ["prometheus"]
      check {
        type                     = "http"
        port                     = "ui"
        path                     = "/health"
        # a probe every 2 s with 4 s to answer, and a slow answer is not an outage:
        # Consul marks the check critical after three failures in a row (6 s or more)
        interval                 = "2s"
        timeout                  = "4s"
        failures_before_critical = 3
      }
    }

    task "fabio" {
      driver = local.docker ? "docker" : "raw_exec"
      user   = local.docker ? "" : "nobody"

      dynamic "config" {
        for_each = local.docker ? [1] : []
        content {
          image   = var.image
          ports   = ["http", "ui", "metrics"]
          command = "/usr/bin/fabio"
          args    = ["-cfg", "/secrets/fabio.properties"]
        }
      }
      dynamic "config" {
        for_each = local.docker ? [] : [1]
        content {
          command = "/usr/local/bin/fabio"
          args    = ["-cfg", "$${NOMAD_SECRETS_DIR}/fabio.properties"]
        }
      }

      consul {}

      vault {
        role        = "platform"
        change_mode = "noop"
      }

      template {
        destination = "secrets/tls/bundle.pem"
        perms       = "0400"
        uid         = 65534 # nobody: the task's user in both profiles
        data        = <<-EOT
          {{- with pkiCert "pki-nomad/issue/platform" (printf "common_name=platform.%s.nomad" (env "NOMAD_REGION")) "ttl=24h" -}}
          {{ .Cert }}{{ .CA }}{{ .Key }}
          {{- end }}
        EOT
        change_mode = "restart" # Fabio keeps its Consul connection; a new certificate needs a restart
      }

      template {
        destination = "secrets/tls/ca.pem"
        data        = <<-EOT
          {{- with secret "pki-root/cert/ca" }}{{ .Data.certificate }}{{ end }}
        EOT
        change_mode = "restart"
      }

      template {
        destination = "secrets/fabio.properties"
        perms       = "0400"
        uid         = 65534
        change_mode = "restart"
        data        = <<-EOT
          proxy.addr = :{{ env "NOMAD_PORT_http" }};proto=http,:{{ env "NOMAD_PORT_metrics" }};proto=prometheus
          ui.addr = :{{ env "NOMAD_PORT_ui" }}
          metrics.target = prometheus
          # the default prefix is the hostname, which may hold characters metric names cannot
          metrics.prefix = fabio
          registry.backend = consul
          # the scheme rides in the address (Fabio has no separate setting)
          registry.consul.addr = https://{{ env "NOMAD_IP_http" }}:8501
          registry.consul.token = {{ env "CONSUL_TOKEN" }}
          registry.consul.tls.cafile = {{ env "NOMAD_SECRETS_DIR" }}/tls/ca.pem
          registry.consul.tls.certfile = {{ env "NOMAD_SECRETS_DIR" }}/tls/bundle.pem
          registry.consul.tls.keyfile = {{ env "NOMAD_SECRETS_DIR" }}/tls/bundle.pem
          # Nomad registers the service and its check; Fabio only reads the catalog
          registry.consul.register.enabled = false
        EOT
      }

      resources {
        cpu    = 100
        memory = 64
      }
    }
  }
}
