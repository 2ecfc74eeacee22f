/**
 * Wires the exporter together from a validated config and runs it until
 * stopped: the sampling loop, the faster RAPL poll when counters could wrap
 * twice in one interval, the live intensity cache and the HTTP server.
 */
import { once } from "node:events";
import { existsSync } from "node:fs";
import { hostname } from "node:os";
import { HttpApi } from "../clients/http.ts";
import type { Reporter } from "../cli/output.ts";
import { OperationError } from "../errors.ts";
import { IntensityCache, staticIntensities, ukCarbonIntensity } from "./carbon.ts";
import { TaskCpuReader } from "./cgroups.ts";
import { ContainerDirectory, dockerSocketLister } from "./docker.ts";
import type { ExporterConfig } from "./config.ts";
import { EnergyExporter } from "./exporter.ts";
import { fsHostReader, type HostReader } from "./host.ts";
import { NomadAllocationDirectory } from "./nomad-metadata.ts";
import { choosePowerSource } from "./power.ts";
import { createExporterServer } from "./server.ts";

export const exporterVersion = "0.1.0";

export interface RunningExporter {
  exporter: EnergyExporter;
  address: string;
  stop(): Promise<void>;
}

export async function startExporter(
  config: ExporterConfig,
  reporter: Reporter,
  options: { reader?: HostReader; token?: string } = {},
): Promise<RunningExporter> {
  const reader = options.reader ?? fsHostReader;
  const power = choosePowerSource(config, reader);
  reporter.info(`energy source: ${power.kind} (${power.reason}); ${power.description}`);
  const fallback = config.carbon.intensity ?? (staticIntensities[config.carbon.region] as number);
  const live = config.carbon.live;
  const intensity = new IntensityCache(fallback, live ? ukCarbonIntensity(live.url, live.regionId) : undefined, {
    ttlMs: (live?.ttlSeconds ?? 1800) * 1000,
    timeoutMs: (live?.timeoutSeconds ?? 5) * 1000,
    maxAgeMs: (live?.maxAgeSeconds ?? 7200) * 1000,
  });
  const metadata = config.nomad.address
    ? new NomadAllocationDirectory(
        new HttpApi(
          "nomad",
          {
            address: config.nomad.address,
            token: options.token,
            caFile: config.nomad.caFile,
            certFile: config.nomad.certFile,
            keyFile: config.nomad.keyFile,
            serverName: config.nomad.serverName,
            timeoutMs: Math.min(5000, config.interval * 1000),
          },
          "X-Nomad-Token",
        ),
        { nodeId: config.nomad.nodeId, minRefreshMs: config.tasks.lookupRetrySeconds * 1000 },
      )
    : undefined;
  if (!metadata) reporter.warn("no Nomad address (nomad.address or NOMAD_ADDR): tasks are exported without namespace/job/group");
  // docker attribution: only when the daemon's socket is there (a node without docker has none)
  const containers =
    config.docker.socket && reader === fsHostReader && existsSync(config.docker.socket)
      ? new ContainerDirectory(dockerSocketLister(config.docker.socket, Math.min(5000, config.interval * 1000)), {
          retryMs: config.tasks.lookupRetrySeconds * 1000,
        })
      : undefined;
  if (containers) reporter.info(`docker tasks: container identities from ${config.docker.socket}`);
  const exporter = new EnergyExporter({
    reader,
    procfs: config.host.procfs,
    node: config.node ?? hostname(),
    power,
    tasks: new TaskCpuReader(reader, {
      cgroup: config.host.cgroup,
      procfs: config.host.procfs,
      nomadParent: config.nomad.cgroupParent,
      dockerParents: config.docker.cgroupParents,
    }),
    metadata,
    containers,
    retentionMs: config.tasks.retentionSeconds * 1000,
    labelGraceMs: config.tasks.labelGraceSeconds * 1000,
    intensity: () => intensity.current(),
    intensityErrors: live ? () => intensity.errors : undefined,
    pue: config.carbon.pue,
    version: exporterVersion,
  });

  let failures = 0;
  let warnedStuck = 0;
  let busy = false;
  const tick = async () => {
    // a sample still waiting on Nomad must not overlap the next one
    if (busy) return;
    busy = true;
    try {
      await exporter.sample();
      failures = 0;
      const stuck = power.rapl?.stuckZones ?? [];
      if (stuck.length > warnedStuck) {
        warnedStuck = stuck.length;
        reporter.warn(
          `RAPL ${stuck.map((z) => `${z.id} (${z.name})`).join(", ")} did not advance while the packages did: using ${power.description} instead`,
        );
      }
    } catch (error) {
      // a failing sample is logged, not fatal: /healthz turns 503 if it persists
      if (failures++ === 0) reporter.warn(`sample failed: ${(error as Error).message}`);
    } finally {
      busy = false;
    }
  };
  await tick();
  const timers: NodeJS.Timeout[] = [setInterval(() => void tick(), config.interval * 1000)];
  if (power.rapl) {
    const safe = power.rapl.safePollSeconds();
    if (safe < config.interval) {
      reporter.info(`polling RAPL every ${safe.toFixed(2)} s so a counter cannot wrap twice between reads`);
      const rapl = power.rapl;
      timers.push(
        setInterval(() => {
          // a failed poll must not end the process: the next poll or sample reads again
          try {
            rapl.poll(Date.now());
          } catch (error) {
            if (exporter.pollErrors++ === 0) reporter.warn(`RAPL poll failed: ${(error as Error).message}`);
          }
        }, safe * 1000),
      );
    }
  }

  const server = createExporterServer(exporter, config.interval);
  const [host, port] = splitListen(config.listen);
  server.listen(port, host);
  try {
    await Promise.race([once(server, "listening"), once(server, "error").then(([e]) => Promise.reject(e))]);
  } catch (error) {
    for (const t of timers) clearInterval(t);
    throw new OperationError(`Cannot listen on ${config.listen}: ${(error as Error).message}`, {
      hint: "Pick a free port with --listen or HASHISTACK_ENERGY_LISTEN.",
    });
  }
  const bound = server.address();
  const address = typeof bound === "object" && bound ? `${bound.address}:${bound.port}` : config.listen;
  reporter.success(`serving /metrics and /healthz on http://${address}`);
  return {
    exporter,
    address,
    async stop() {
      for (const t of timers) clearInterval(t);
      server.closeAllConnections?.();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function splitListen(listen: string): [string, number] {
  const index = listen.lastIndexOf(":");
  return [listen.slice(0, index) || "0.0.0.0", Number(listen.slice(index + 1))];
}
