# GitLab Runner: deployed by `bootstrap` only when a runner authentication token
# (glrt-…) is configured. The token and the GitLab URL live in the Nomad
# variable nomad/jobs/gitlab-runner; config.toml is rendered into secrets/ and
# never appears in the job. Runner metrics are scraped by Prometheus.

variable "runtime" {
  type        = string
  default     = "docker"
  description = "docker (pinned image, docker executor) or exec (gitlab-runner from packages.gitlab.com on the node, shell executor)"
  validation {
    condition     = contains(["docker", "exec"], var.runtime)
    error_message = "The runtime must be \"docker\" or \"exec\"."
  }
}

variable "image" {
  type    = string
  default = "gitlab/gitlab-runner:v18.3.0"
}

variable "concurrent" {
  type    = number
  default = 2
}

locals {
  docker = var.runtime == "docker"
}

job "gitlab-runner" {
  namespace   = "platform"
  type        = "service"
  datacenters = ["*"]

  group "runner" {
    count = 1

    network {
      port "metrics" {
        static = 9252
      }
    }

    # Deployment health (jobs/README.md, "Deployment health"): an unhealthy allocation
    # is replaced, and the deployment fails when none is healthy by progress_deadline,
    # which comes before bootstrap's 5-minute wait.
    update {
      max_parallel      = 1
      health_check      = "checks"
      min_healthy_time  = "5s"
      healthy_deadline  = "3m"
      progress_deadline = "4m"
      auto_revert       = true
    }

    service {
      name     = "gitlab-runner"
      port     = "metrics"
      provider = "consul"
      tags     = ["prometheus"]
      check {
        type                     = "http"
        path                     = "/metrics"
        # a probe every 2 s with 4 s to answer, and a slow answer is not an outage:
        # Consul marks the check critical after three failures in a row (6 s or more)
        interval                 = "2s"
        timeout                  = "4s"
        failures_before_critical = 3
      }
    }

    # the docker executor drives the node's Docker Engine through its socket, a
    # host volume only platform jobs may use. Whoever holds that socket is root on
    # the node: the CI jobs this runner starts are as trusted as the node itself.
    dynamic "volume" {
      for_each = local.docker ? ["docker-sock"] : []
      labels   = [volume.value]
      content {
        type   = "host"
        source = volume.value
      }
    }

    task "runner" {
      driver = local.docker ? "docker" : "raw_exec"
      user   = local.docker ? "" : "gitlab-runner"

      dynamic "config" {
        for_each = local.docker ? [1] : []
        content {
          image   = var.image
          ports   = ["metrics"]
          args    = ["run", "--config", "/secrets/config.toml", "--working-directory", "/alloc/data"]
        }
      }
      dynamic "volume_mount" {
        for_each = local.docker ? ["docker-sock"] : []
        content {
          volume      = volume_mount.value
          destination = "/var/run/docker.sock"
        }
      }
      dynamic "config" {
        for_each = local.docker ? [] : [1]
        content {
          command = "/usr/bin/gitlab-runner"
          args    = ["run", "--config", "$${NOMAD_SECRETS_DIR}/config.toml", "--working-directory", "$${NOMAD_ALLOC_DIR}/data"]
        }
      }

      template {
        destination = "secrets/config.toml"
        perms       = "0400"
        change_mode = "restart"
        data        = <<-EOT
          concurrent = ${var.concurrent}
          check_interval = 3
          listen_address = ":{{ env "NOMAD_PORT_metrics" }}"
          {{ with nomadVar "nomad/jobs/gitlab-runner" }}
          [[runners]]
            name = "nomad-{{ env "node.unique.name" }}"
            url = {{ print .url | toJSON }}
            token = {{ print .token | toJSON }}
            executor = "${local.docker ? "docker" : "shell"}"
          ${local.docker ? "  [runners.docker]\n    image = \"debian:bookworm-slim\"\n    privileged = false\n" : ""}
          {{ end }}
        EOT
      }

      resources {
        cpu    = 200
        memory = 256
      }
    }
  }
}
