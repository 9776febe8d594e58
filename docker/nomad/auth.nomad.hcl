# Nomad job for the Beehive auth service. Instances find their peers and
# Kafka/Cassandra/Redis through Consul and config; each registers itself
# in Consul (beehive-auth) with HTTP /ready and gRPC health checks.
job "beehive-auth" {
  datacenters = ["dc1"]
  type        = "service"

  update {
    max_parallel     = 1
    min_healthy_time = "10s"
    healthy_deadline = "2m"
    auto_revert      = true
  }

  group "auth" {
    count = 2

    network {
      port "http" {}
      port "grpc" {}
    }

    restart {
      attempts = 5
      interval = "5m"
      delay    = "10s"
      mode     = "delay"
    }

    task "auth" {
      driver = "exec"

      config {
        command = "/usr/local/bin/beehive"
        args = [
          "serve", "auth",
          "--http-addr", "${NOMAD_ADDR_http}",
          "--grpc-addr", "${NOMAD_ADDR_grpc}",
          "--config", "/etc/beehive/beehive.yaml",
        ]
      }

      env {
        BEEHIVE_MODE              = "distributed"
        BEEHIVE_CONSUL_ADDR       = "${attr.unique.network.ip-address}:8500"
        BEEHIVE_GATEWAY_ID        = "gw-${NOMAD_ALLOC_ID}"
      }

      resources {
        cpu    = 500
        memory = 512
      }

      kill_signal  = "SIGTERM"
      kill_timeout = "30s"
    }
  }
}
