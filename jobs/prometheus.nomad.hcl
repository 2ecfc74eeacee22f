# Prometheus: scrapes Nomad, Consul, Vault, Fabio, the energy exporter and every
# Consul service tagged "prometheus" (seed 003 listing 5.5), evaluates the alert
# rules and sends alerts to Alertmanager. Certificates and tokens come from
# workload identity: a Vault PKI client certificate (renewed by Nomad's template
# runner), a Vault token for Vault's metrics and a Consul token for discovery.
# Cluster-specific inputs (alert rules, Vault addresses) live in the Nomad
# variable nomad/jobs/prometheus, written by `bootstrap`; a change there
# re-renders the files and reloads Prometheus without a restart.

variable "runtime" {
  type        = string
  default     = "docker"
  description = "docker (pinned image) or exec (the Prometheus 3 binary installed on clients by bootstrap, run by raw_exec)"
  validation {
    condition     = contains(["docker", "exec"], var.runtime)
    error_message = "The runtime must be \"docker\" or \"exec\"."
  }
}

variable "image" {
  type    = string
  default = "quay.io/prometheus/prometheus:v3.16.0"
}

variable "retention" {
  type    = string
  default = "360h"
}

locals {
  docker = var.runtime == "docker"
  # the task's own folders are the same path inside a container and in raw_exec's task dir env
  config = "$${NOMAD_SECRETS_DIR}/prometheus.yml"
}

job "prometheus" {
  namespace   = "platform"
  type        = "service"
  datacenters = ["*"]

  group "prometheus" {
    count = 1

    network {
      port "http" {
        static = 9090
      }
    }

    # scheduled only where the data volume exists; raw_exec cannot mount, so the
    # exec profile writes to the volume's host path directly
    volume "data" {
      type      = "host"
      source    = "prometheus"
      read_only = false
    }

    restart {
      attempts = 3
      interval = "5m"
      delay    = "10s"
      mode     = "delay"
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
      name     = "prometheus"
      port     = "http"
      provider = "consul"
      tags     = ["prometheus", "urlprefix-/prometheus"]
      meta {
        metrics_path = "/prometheus/metrics"
      }
      check {
        type                     = "http"
        path                     = "/prometheus/-/ready"
        # a probe every 2 s with 4 s to answer, and a slow answer is not an outage:
        # Consul marks the check critical after three failures in a row (6 s or more)
        interval                 = "2s"
        timeout                  = "4s"
        failures_before_critical = 3
      }
    }

    task "prometheus" {
      driver = local.docker ? "docker" : "raw_exec"
      user   = local.docker ? "" : "nobody"

      dynamic "config" {
        for_each = local.docker ? [1] : []
        content {
          image = var.image
          ports = ["http"]
          args = [
            "--config.file=/secrets/prometheus.yml",
            "--storage.tsdb.path=/prometheus",
            "--storage.tsdb.retention.time=${var.retention}",
            "--web.listen-address=0.0.0.0:9090",
            "--web.external-url=http://$${NOMAD_ADDR_http}/prometheus",
          ]
        }
      }
      dynamic "config" {
        for_each = local.docker ? [] : [1]
        content {
          command = "/usr/local/bin/prometheus"
          args = [
            "--config.file=${local.config}",
            "--storage.tsdb.path=/opt/nomad/volumes/prometheus",
            "--storage.tsdb.retention.time=${var.retention}",
            "--web.listen-address=$${NOMAD_ADDR_http}",
            "--web.external-url=http://$${NOMAD_ADDR_http}/prometheus",
          ]
        }
      }
      dynamic "volume_mount" {
        for_each = local.docker ? [1] : []
        content {
          volume      = "data"
          destination = "/prometheus"
        }
      }

      # a Consul token for consul_sd_configs and agent metrics (workload identity, role platform-observer)
      consul {}

      # a Vault token (workload identity, role platform) for PKI and Vault's metrics
      vault {
        role        = "platform"
        change_mode = "noop"
      }

      template {
        destination = "secrets/tls/bundle.pem"
        perms       = "0400"
        uid         = 65534 # nobody: the task's user in both profiles
        # certificate, issuer and key in one file: pkiCert re-reads it to decide on renewal
        data        = <<-EOT
          {{- with pkiCert "pki-nomad/issue/platform" (printf "common_name=platform.%s.nomad" (env "NOMAD_REGION")) "ttl=24h" -}}
          {{ .Cert }}{{ .CA }}{{ .Key }}
          {{- end }}
        EOT
        change_mode = "noop" # Prometheus reads the files on every new connection
      }

      template {
        destination = "secrets/tls/ca.pem"
        data        = <<-EOT
          {{- with secret "pki-root/cert/ca" }}{{ .Data.certificate }}{{ end }}
        EOT
        change_mode = "noop"
      }

      template {
        destination     = "local/rules/cluster.rules.yml"
        left_delimiter  = "[["
        right_delimiter = "]]"
        data            = <<-EOT
          [[- with nomadVar "nomad/jobs/prometheus" ]][[ .cluster_rules ]][[ end ]]
        EOT
        change_mode     = "signal"
        change_signal   = "SIGHUP"
      }

      template {
        destination     = "local/rules/energy.rules.yml"
        left_delimiter  = "[["
        right_delimiter = "]]"
        data            = <<-EOT
          [[- with nomadVar "nomad/jobs/prometheus" ]][[ .energy_rules ]][[ end ]]
        EOT
        change_mode     = "signal"
        change_signal   = "SIGHUP"
      }

      # Service discovery is Prometheus' own consul_sd_configs, against the local
      # Consul agent's HTTPS API (mTLS with the certificate above, the task's Consul
      # token from workload identity, role platform-observer); every instance, healthy
      # or not, is discovered, so a dead target shows up as down. The token is in the
      # file, so it lives in secrets/.
      template {
        destination   = "secrets/prometheus.yml"
        perms         = "0400"
        uid           = 65534
        change_mode   = "signal"
        change_signal = "SIGHUP"
        data          = <<-EOT
          global:
            scrape_interval: 15s
            evaluation_interval: 15s
            external_labels:
              datacenter: {{ env "NOMAD_DC" }}
          rule_files:
            - {{ env "NOMAD_TASK_DIR" }}/rules/*.yml
          alerting:
            alertmanagers:
              - path_prefix: /alertmanager
                consul_sd_configs:
                  # the local agent: its address is this allocation's host address in both profiles
                  - <<: &consul
                      server: {{ env "NOMAD_IP_http" }}:8501
                      scheme: https
                      datacenter: {{ env "NOMAD_DC" }}
                      token: {{ env "CONSUL_TOKEN" | toJSON }}
                      tls_config: &tls
                        ca_file: {{ env "NOMAD_SECRETS_DIR" }}/tls/ca.pem
                        cert_file: {{ env "NOMAD_SECRETS_DIR" }}/tls/bundle.pem
                        key_file: {{ env "NOMAD_SECRETS_DIR" }}/tls/bundle.pem
                    services: [alertmanager]
          scrape_configs:
            # seed 003, listing 5.5: every Consul service tagged "prometheus" (the tag is
            # also asked of Consul, so untagged services are not even watched), sidecar
            # proxies dropped, labelled by service; the metrics path from the service's
            # metrics_path meta. Applications may answer without a Content-Type.
            - job_name: consul-services
              fallback_scrape_protocol: PrometheusText0.0.4
              consul_sd_configs:
                - <<: *consul
                  tags: [prometheus]
              relabel_configs:
                - source_labels: [__meta_consul_service]
                  regex: .+-sidecar-proxy
                  action: drop
                - source_labels: [__meta_consul_tags]
                  regex: .*,prometheus,.*
                  action: keep
                - source_labels: [__meta_consul_service]
                  target_label: service
                - source_labels: [__meta_consul_service]
                  target_label: job
                - source_labels: [__meta_consul_node]
                  target_label: node
                - source_labels: [__meta_consul_service_metadata_metrics_path]
                  regex: (.+)
                  target_label: __metrics_path__
            # Nomad servers and clients over mTLS: the services their agents register
            - job_name: nomad-servers
              scheme: https
              metrics_path: /v1/metrics
              params: { format: [prometheus] }
              tls_config: *tls
              consul_sd_configs:
                - <<: *consul
                  services: [nomad]
                  tags: [http]
              relabel_configs: &node
                - source_labels: [__meta_consul_node]
                  target_label: node
            - job_name: nomad-clients
              scheme: https
              metrics_path: /v1/metrics
              params: { format: [prometheus] }
              tls_config: *tls
              consul_sd_configs:
                - <<: *consul
                  services: [nomad-client]
                  tags: [http]
              relabel_configs: *node
            # every Consul agent: each node is a Nomad server or client, so their
            # services name every node; the agent's HTTPS port on the node's address
            - job_name: consul
              scheme: https
              metrics_path: /v1/agent/metrics
              params: { format: [prometheus] }
              tls_config: *tls
              authorization:
                credentials: {{ env "CONSUL_TOKEN" | toJSON }}
              consul_sd_configs:
                - <<: *consul
                  services: [nomad, nomad-client]
                  tags: [http]
              relabel_configs:
                - source_labels: [__meta_consul_address]
                  regex: (.+)
                  replacement: $1:8501
                  target_label: __address__
                - source_labels: [__meta_consul_node]
                  target_label: node
            # Vault does not register in Consul: its addresses come from the Nomad variable
            - job_name: vault
              scheme: https
              metrics_path: /v1/sys/metrics
              params: { format: [prometheus] }
              tls_config: *tls
              authorization:
                credentials: {{ env "VAULT_TOKEN" | toJSON }}
              static_configs:
                - targets: [{{ with nomadVar "nomad/jobs/prometheus" }}{{ .vault_targets }}{{ end }}]
        EOT
      }

      resources {
        cpu    = 300
        memory = 512
      }
    }
  }
}
