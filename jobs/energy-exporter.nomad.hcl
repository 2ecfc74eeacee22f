# Energy and CO2e exporter (scripts/energy-exporter.ts): one per Nomad client.
#
#   nomad job run -var runtime=exec jobs/energy-exporter.nomad.hcl
#
# Profiles (var.runtime, matched against the clients' meta.hashistack_runtime):
#   exec   — the bundled dist/energy-exporter.mjs run by Debian's `nodejs` with raw_exec.
#            raw_exec, not exec: the exporter needs the host's /proc, /sys and cgroup
#            tree and root (energy_uj is root-only), as node-exporter does.
#   docker — the image built from exporter/Containerfile (or by `bootstrap` with
#            jobs.registry.build), host trees as read-only host volumes.
#
# Secrets: the exporter's Nomad token is read from the Nomad Variable
# nomad/jobs/energy-exporter (key `token`, namespace platform), which this job's
# workload identity may read; without it tasks are exported without job names.
# Its policy (docs/energy.md): namespace "*" { capabilities = ["read-job"] }.

variable "runtime" {
  type        = string
  default     = "docker"
  description = "exec or docker"
  validation {
    condition     = contains(["exec", "docker"], var.runtime)
    error_message = "The runtime variable must be \"exec\" or \"docker\"."
  }
}

variable "datacenters" {
  type    = list(string)
  default = ["*"]
}

variable "port" {
  type    = number
  default = 9875
}

variable "exporter_js" {
  type        = string
  default     = "/opt/hashistack/energy-exporter/energy-exporter.mjs"
  description = "exec profile: where bootstrap put the bundle on every client"
}

variable "image" {
  type        = string
  default     = "hashistack/energy-exporter:0.1.0"
  description = "docker profile: the image built from exporter/Containerfile"
}

variable "region" {
  type        = string
  default     = "global"
  description = "Nomad region: the local agent's certificate is for client.<region>.nomad"
}

variable "nomad_tls_dir" {
  type    = string
  default = "/etc/nomad.d/tls"
}

variable "carbon_region" {
  type        = string
  default     = "FR"
  description = "a region of the exporter's static intensity table (docs/energy.md), e.g. FR, DE, GB, US, WORLD"
}

variable "pue" {
  type        = number
  default     = 1.4
  description = "power usage effectiveness of the site (1.0 = no overhead)"
}

variable "interval" {
  type    = number
  default = 5
}

variable "rapl_idle" {
  type        = string
  default     = "model"
  description = "RAPL idle power: model (measured energy split by the CPU family model's idle share at the node's utilisation) or watts measured on the node at rest, e.g. \"42\""
  validation {
    condition     = var.rapl_idle == "model" || can(tonumber(var.rapl_idle))
    error_message = "The rapl_idle variable must be \"model\" or a number of watts."
  }
}

variable "nomad_cgroup_parent" {
  type        = string
  default     = ""
  description = "the Nomad clients' cgroup_parent, when set in their config (empty: nomad.slice on cgroup v2, /nomad on v1)"
}

variable "docker_cgroup_parents" {
  type        = list(string)
  default     = ["docker", "system.slice"]
  description = "the docker daemon's cgroup parents: docker (cgroupfs driver), system.slice (systemd driver), or its cgroup-parent"
}

variable "retention_seconds" {
  type        = number
  default     = 300
  description = "how long an ended task's final values stay exported (several scrape intervals of every Prometheus)"
}

locals {
  # the exporter's config file (docs/energy.md); env vars below set the rest
  config = <<-EOT
    interval: ${var.interval}
    carbon:
      pue: ${var.pue}
      region: ${var.carbon_region}
    rapl:
      idle: ${var.rapl_idle}
    tasks:
      retentionSeconds: ${var.retention_seconds}
    docker:
      cgroupParents: ${jsonencode(var.docker_cgroup_parents)}
    %{~if var.nomad_cgroup_parent != ""}
    nomad:
      cgroupParent: ${jsonencode(var.nomad_cgroup_parent)}
    %{~endif}
  EOT
  # Node.js flags: keep in step with scripts/lib/energy/node-flags.ts (a unit test checks)
  node_flags = ["--max-semi-space-size=1", "--single-threaded"]
  # the token is optional: without it the exporter runs and counts lookup errors, tasks unnamed
  token = <<-EOT
    {{ if nomadVarExists "nomad/jobs/energy-exporter" }}{{ with nomadVar "nomad/jobs/energy-exporter" }}NOMAD_TOKEN={{ .token }}{{ end }}{{ end }}
  EOT
}

job "energy-exporter" {
  datacenters = var.datacenters
  type        = "system"
  # the platform namespace is the one where raw_exec is allowed (scripts/lib/stages/nomad.ts)
  namespace = "platform"

  constraint {
    attribute = "${meta.hashistack_runtime}"
    value     = var.runtime
  }

  group "exporter" {
    network {
      port "metrics" {
        static = var.port
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
      name     = "energy-exporter"
      port     = "metrics"
      provider = "consul"
      tags     = ["prometheus"]
      meta {
        metrics_path = "/metrics"
      }
      check {
        type                     = "http"
        path                     = "/healthz"
        # a probe every 2 s with 4 s to answer, and a slow answer is not an outage:
        # Consul marks the check critical after three failures in a row (6 s or more)
        interval                 = "2s"
        timeout                  = "4s"
        failures_before_critical = 3
      }
    }

    # docker: the host trees come as read-only Nomad host volumes of the docker
    # clients (the docker plugin mounts no host paths itself); using them needs a
    # host_volume grant that only the platform namespace's jobs have
    dynamic "volume" {
      for_each = var.runtime == "docker" ? ["host-sys", "host-proc", "docker-sock"] : []
      labels   = [volume.value]
      content {
        type      = "host"
        source    = volume.value
        read_only = true
      }
    }

    dynamic "task" {
      for_each = var.runtime == "exec" ? ["exporter"] : []
      labels   = ["exporter"]
      content {
        driver = "raw_exec"
        config {
          command = "/usr/bin/node"
          args    = concat(local.node_flags, [var.exporter_js, "--config", "${NOMAD_TASK_DIR}/energy.yaml"])
        }
        env {
          HASHISTACK_ENERGY_LISTEN        = "${NOMAD_IP_metrics}:${NOMAD_PORT_metrics}"
          HASHISTACK_ENERGY_NODE          = "${node.unique.name}"
          HASHISTACK_ENERGY_NOMAD_NODE_ID = "${node.unique.id}"
          NOMAD_ADDR                      = "https://${attr.unique.network.ip-address}:4646"
          NOMAD_CACERT                    = "${var.nomad_tls_dir}/ca.pem"
          NOMAD_CLIENT_CERT               = "${var.nomad_tls_dir}/agent.pem"
          NOMAD_CLIENT_KEY                = "${var.nomad_tls_dir}/agent-key.pem"
          NOMAD_TLS_SERVER_NAME           = "client.${var.region}.nomad"
        }
        template {
          destination = "local/energy.yaml"
          data        = local.config
        }
        template {
          destination = "secrets/nomad.env"
          env         = true
          data        = local.token
        }
        resources {
          cpu    = 50
          memory = 96
        }
      }
    }

    dynamic "task" {
      for_each = var.runtime == "docker" ? ["exporter"] : []
      labels   = ["exporter"]
      content {
        driver = "docker"
        config {
          image        = var.image
          network_mode = "host"
          entrypoint   = concat(["node"], local.node_flags, ["/app/energy-exporter.mjs"])
          args         = ["--config", "/local/energy.yaml"]
        }
        # read-only host trees; the exporter reads them under /host
        volume_mount {
          volume      = "host-sys"
          destination = "/host/sys"
          read_only   = true
        }
        volume_mount {
          volume      = "host-proc"
          destination = "/host/proc"
          read_only   = true
        }
        # The docker socket names the Nomad task of each container cgroup (GET
        # /containers/json only); read-only does not limit the API, so this task is
        # as trusted as the docker daemon: platform code only, in the platform namespace.
        volume_mount {
          volume      = "docker-sock"
          destination = "/var/run/docker.sock"
          read_only   = true
        }
        # its own client certificate from Vault's PKI (workload identity, role
        # platform): the container never sees the agent's key
        vault {
          role        = "platform"
          change_mode = "noop"
        }
        template {
          destination = "secrets/tls/bundle.pem"
          perms       = "0400"
          # certificate, issuer and key in one file: pkiCert re-reads it to decide on renewal
          data        = <<-EOT
            {{- with pkiCert "pki-nomad/issue/platform" (printf "common_name=platform.%s.nomad" (env "NOMAD_REGION")) "ttl=24h" -}}
            {{ .Cert }}{{ .CA }}{{ .Key }}
            {{- end }}
          EOT
          change_mode = "restart" # the exporter reads its certificate at start
        }
        template {
          destination = "secrets/tls/ca.pem"
          data        = <<-EOT
            {{- with secret "pki-root/cert/ca" }}{{ .Data.certificate }}{{ end }}
          EOT
          change_mode = "restart"
        }
        env {
          HASHISTACK_ENERGY_LISTEN        = "${NOMAD_IP_metrics}:${NOMAD_PORT_metrics}"
          HASHISTACK_ENERGY_NODE          = "${node.unique.name}"
          HASHISTACK_ENERGY_NOMAD_NODE_ID = "${node.unique.id}"
          HASHISTACK_ENERGY_HOST_SYSFS    = "/host/sys"
          HASHISTACK_ENERGY_HOST_PROCFS   = "/host/proc"
          HASHISTACK_ENERGY_HOST_CGROUP   = "/host/sys/fs/cgroup"
          NOMAD_ADDR                      = "https://${attr.unique.network.ip-address}:4646"
          NOMAD_CACERT                    = "/secrets/tls/ca.pem"
          NOMAD_CLIENT_CERT               = "/secrets/tls/bundle.pem"
          NOMAD_CLIENT_KEY                = "/secrets/tls/bundle.pem"
          NOMAD_TLS_SERVER_NAME           = "client.${var.region}.nomad"
        }
        template {
          destination = "local/energy.yaml"
          data        = local.config
        }
        template {
          destination = "secrets/nomad.env"
          env         = true
          data        = local.token
        }
        resources {
          cpu    = 50
          memory = 96
        }
      }
    }
  }
}
