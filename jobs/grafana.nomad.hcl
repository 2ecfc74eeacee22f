# Grafana: the Prometheus datasource and the dashboards are provisioned from
# files (nothing is downloaded at start, it works offline). The dashboards and
# the generated admin password live in the Nomad variable nomad/jobs/grafana,
# written by `bootstrap` from jobs/files/grafana/ and the cluster's state; the
# password never appears in this file or in the job's submission.

variable "runtime" {
  type        = string
  default     = "docker"
  description = "docker (pinned image) or exec (the grafana package from apt.grafana.com on the node, run by raw_exec)"
  validation {
    condition     = contains(["docker", "exec"], var.runtime)
    error_message = "The runtime must be \"docker\" or \"exec\"."
  }
}

variable "image" {
  type    = string
  default = "grafana/grafana-oss:12.1.1"
}

locals {
  docker = var.runtime == "docker"
}

job "grafana" {
  namespace   = "platform"
  type        = "service"
  datacenters = ["*"]

  group "grafana" {
    count = 1

    network {
      port "http" {
        static = 3000
      }
    }

    volume "data" {
      type      = "host"
      source    = "grafana"
      read_only = false
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
      name     = "grafana"
      port     = "http"
      provider = "consul"
      tags     = ["prometheus", "urlprefix-/grafana"]
      check {
        type                     = "http"
        path                     = "/grafana/api/health"
        # a probe every 2 s with 4 s to answer, and a slow answer is not an outage:
        # Consul marks the check critical after three failures in a row (6 s or more)
        interval                 = "2s"
        timeout                  = "4s"
        failures_before_critical = 3
      }
    }

    task "grafana" {
      driver = local.docker ? "docker" : "raw_exec"
      user   = local.docker ? "" : "grafana"

      dynamic "config" {
        for_each = local.docker ? [1] : []
        content {
          image = var.image
          ports = ["http"]
        }
      }
      dynamic "config" {
        for_each = local.docker ? [] : [1]
        content {
          command = "/usr/share/grafana/bin/grafana"
          args    = ["server", "--homepath", "/usr/share/grafana"]
        }
      }
      dynamic "volume_mount" {
        for_each = local.docker ? [1] : []
        content {
          volume      = "data"
          destination = "/var/lib/grafana"
        }
      }

      env {
        GF_PATHS_PROVISIONING          = "$${NOMAD_TASK_DIR}/provisioning"
        GF_PATHS_DATA                  = local.docker ? "/var/lib/grafana" : "/opt/nomad/volumes/grafana"
        GF_SERVER_HTTP_PORT            = "$${NOMAD_PORT_http}"
        GF_SERVER_ROOT_URL             = "%(protocol)s://%(domain)s/grafana/"
        GF_SERVER_SERVE_FROM_SUB_PATH  = "true"
        GF_ANALYTICS_REPORTING_ENABLED = "false"
        GF_ANALYTICS_CHECK_FOR_UPDATES = "false"
        GF_PLUGINS_PREINSTALL_DISABLED = "true"
        GF_AUTH_ANONYMOUS_ENABLED      = "false"
        GF_USERS_ALLOW_SIGN_UP         = "false"
      }

      # the admin password, from the job's Nomad variable into the task's environment only
      template {
        destination = "secrets/admin.env"
        env         = true
        perms       = "0400"
        change_mode = "restart"
        data        = <<-EOT
          {{ with nomadVar "nomad/jobs/grafana" }}GF_SECURITY_ADMIN_PASSWORD={{ print .admin_password | toJSON }}{{ end }}
        EOT
      }

      # Prometheus through the Fabio on this node (a system job on every client):
      # the address survives Prometheus moving to another node
      template {
        destination = "local/provisioning/datasources/prometheus.yml"
        change_mode = "restart"
        data        = <<-EOT
          apiVersion: 1
          datasources:
            - name: Prometheus
              uid: prometheus
              type: prometheus
              access: proxy
              isDefault: true
              url: http://{{ env "NOMAD_IP_http" }}:9999/prometheus
        EOT
      }

      template {
        destination = "local/provisioning/dashboards/files.yml"
        data        = <<-EOT
          apiVersion: 1
          providers:
            - name: hashistack
              folder: hashistack
              type: file
              allowUiUpdates: false
              options:
                path: {{ env "NOMAD_TASK_DIR" }}/dashboards
        EOT
      }

      template {
        destination     = "local/dashboards/cluster.json"
        left_delimiter  = "[["
        right_delimiter = "]]"
        change_mode     = "noop" # Grafana re-reads provisioned dashboards on its own
        data            = <<-EOT
          [[- with nomadVar "nomad/jobs/grafana" ]][[ .dashboard_cluster ]][[ end ]]
        EOT
      }

      template {
        destination     = "local/dashboards/energy.json"
        left_delimiter  = "[["
        right_delimiter = "]]"
        change_mode     = "noop"
        data            = <<-EOT
          [[- with nomadVar "nomad/jobs/grafana" ]][[ .dashboard_energy ]][[ end ]]
        EOT
      }

      resources {
        cpu    = 200
        memory = 256
      }
    }
  }
}
