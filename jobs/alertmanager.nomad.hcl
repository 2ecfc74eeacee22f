# Alertmanager: receives Prometheus's alerts. With a Slack webhook URL in the
# Nomad variable nomad/jobs/alertmanager (items receiver = "slack" and
# slack_webhook_url, written by `bootstrap` from SLACK_WEBHOOK_URL), alerts go to
# Slack; without one (receiver = "null") they stop at a harmless receiver.

variable "runtime" {
  type        = string
  default     = "docker"
  description = "docker (pinned image) or exec (the Alertmanager binary installed on clients by bootstrap, run by raw_exec)"
  validation {
    condition     = contains(["docker", "exec"], var.runtime)
    error_message = "The runtime must be \"docker\" or \"exec\"."
  }
}

variable "image" {
  type    = string
  default = "quay.io/prometheus/alertmanager:v0.35.0"
}

locals {
  docker = var.runtime == "docker"
}

job "alertmanager" {
  namespace   = "platform"
  type        = "service"
  datacenters = ["*"]

  group "alertmanager" {
    count = 1

    network {
      port "http" {
        static = 9093
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
      name     = "alertmanager"
      port     = "http"
      provider = "consul"
      tags     = ["prometheus", "urlprefix-/alertmanager"]
      meta {
        metrics_path = "/alertmanager/metrics"
      }
      check {
        type                     = "http"
        path                     = "/alertmanager/-/ready"
        # a probe every 2 s with 4 s to answer, and a slow answer is not an outage:
        # Consul marks the check critical after three failures in a row (6 s or more)
        interval                 = "2s"
        timeout                  = "4s"
        failures_before_critical = 3
      }
    }

    task "alertmanager" {
      driver = local.docker ? "docker" : "raw_exec"
      user   = local.docker ? "" : "nobody"

      dynamic "config" {
        for_each = local.docker ? [1] : []
        content {
          image = var.image
          ports = ["http"]
          args = [
            "--config.file=/secrets/alertmanager.yml",
            "--storage.path=/alloc/data",
            "--web.listen-address=0.0.0.0:9093",
            "--web.external-url=http://$${NOMAD_ADDR_http}/alertmanager",
            "--cluster.listen-address=",
          ]
        }
      }
      dynamic "config" {
        for_each = local.docker ? [] : [1]
        content {
          command = "/usr/local/bin/alertmanager"
          args = [
            "--config.file=$${NOMAD_SECRETS_DIR}/alertmanager.yml",
            "--storage.path=$${NOMAD_ALLOC_DIR}/data",
            "--web.listen-address=$${NOMAD_ADDR_http}",
            "--web.external-url=http://$${NOMAD_ADDR_http}/alertmanager",
            "--cluster.listen-address=",
          ]
        }
      }

      # the webhook URL is a secret: rendered into secrets/, never into the job
      template {
        destination   = "secrets/alertmanager.yml"
        perms         = "0400"
        uid           = 65534 # nobody: the task's user in both profiles
        change_mode   = "signal"
        change_signal = "SIGHUP"
        data          = <<-EOT
          route:
            receiver: {{ with nomadVar "nomad/jobs/alertmanager" }}{{ print .receiver | toJSON }}{{ end }}
            group_by: [alertname, datacenter]
            group_wait: 30s
            group_interval: 5m
            repeat_interval: 4h
          receivers:
            - name: "null"
            {{- with nomadVar "nomad/jobs/alertmanager" }}{{ if eq (print .receiver) "slack" }}
            - name: slack
              slack_configs:
                - api_url: {{ print .slack_webhook_url | toJSON }}
                  send_resolved: true
                  title: '[{{ "{{" }} .Status | toUpper {{ "}}" }}] {{ "{{" }} .CommonLabels.alertname {{ "}}" }}'
                  text: '{{ "{{" }} range .Alerts {{ "}}" }}{{ "{{" }} .Annotations.summary {{ "}}" }}{{ "\n" }}{{ "{{" }} end {{ "}}" }}'
            {{- end }}{{ end }}
        EOT
      }

      resources {
        cpu    = 100
        memory = 128
      }
    }
  }
}
