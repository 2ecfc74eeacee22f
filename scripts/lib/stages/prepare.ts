/**
 * prepare: OS facts, service users, directories and the binaries. The binaries are
 * made ready on the operator's machine (nodes may have no internet) and uploaded:
 * `install.method: upload` takes them from the local build cache (air-gapped and test
 * installs), `download` from HashiCorp's releases, signature and checksum verified.
 */
import { binaryPath, ensureBinary } from "../binaries/build.ts";
import { type ToolSpec, tools } from "../binaries/catalog.ts";
import { ensureReleaseBinary, releaseSource } from "../binaries/releases.ts";
import { runtimeProfile } from "../config/schema.ts";
import type { ClusterConfig } from "../config/schema.ts";
import { ensureDockerEngine } from "../docker/install.ts";
import { OperationError } from "../errors.ts";
import { onEachHost, requireAllSucceeded } from "../remote/fanout.ts";
import { shellQuote } from "../remote/quote.ts";
import { nodeLayout } from "../render/layout.ts";
import type { ClusterRun } from "./run-context.ts";

const users = ["consul", "nomad", "vault"];

export async function prepareStage(run: ClusterRun): Promise<string> {
  const { config } = run;
  const versioned = {
    consul: { ...tools.consul, version: config.versions.consul },
    nomad: { ...tools.nomad, version: config.versions.nomad },
    vault: { ...tools.vault, version: config.versions.vault },
    "consul-template": { ...tools["consul-template"], version: config.versions.consulTemplate },
  };
  // the exec profile has no image registry: Fabio's binary is installed on the clients
  const fabioOnClients = runtimeProfile(config) === "exec" && config.jobs.fabio.enabled;
  // the docker profile's clients run Docker Engine
  const dockerClients = runtimeProfile(config) === "docker";
  const log = (line: string) => run.reporter.debug(line);
  const local = await localBinaries(config, versioned, fabioOnClients, log);
  const layout = nodeLayout();
  const outcomes = await onEachHost(
    run.inventory.hosts,
    async (host) => {
      const remote = run.remote(host);
      const facts = (
        await remote.run('uname -s -m; . /etc/os-release && echo "$ID $VERSION_ID $ID_LIKE"; command -v systemctl')
      ).stdout.split("\n");
      if (facts[0] !== "Linux x86_64") {
        throw new OperationError(`${host.name}: unsupported platform '${facts[0]}'; the binaries are built for Linux x86_64.`);
      }
      if (!facts[2]) throw new OperationError(`${host.name}: systemd is required (no systemctl found).`);
      const dirs = [
        `install -d -m 0750 -o consul -g consul ${layout.consul.dataDir}`,
        `install -d -m 0755 ${layout.consul.configDir}`,
        `install -d -m 0750 -o root -g consul ${layout.consul.tlsDir}`,
        `install -d -m 0755 ${layout.nomad.configDir}`,
        `install -d -m 0750 -o root -g nomad ${layout.nomad.tlsDir}`,
        host.roles.includes("server")
          ? `install -d -m 0750 -o nomad -g nomad ${layout.nomad.dataDir}`
          : `install -d -m 0711 ${layout.nomad.dataDir}`,
        // owned by the users the jobs run as: nobody (Prometheus) and the Grafana image's uid
        `install -d -m 0750 -o 65534 -g 65534 ${layout.nomad.hostVolumesDir}/prometheus`,
        `install -d -m 0750 -o 472 -g 472 ${layout.nomad.hostVolumesDir}/grafana`,
        `install -d -m 0750 ${layout.consulTemplate.configDir} ${layout.consulTemplate.templatesDir}`,
        ...(host.roles.includes("vault")
          ? [
              `install -d -m 0755 ${layout.vault.configDir}`,
              `install -d -m 0750 -o root -g vault ${layout.vault.tlsDir}`,
              `install -d -m 0700 -o vault -g vault ${layout.vault.dataDir}`,
              `install -d -m 0750 -o vault -g vault $(dirname ${layout.vault.auditLog})`,
            ]
          : []),
      ];
      const createUsers = users.map(
        (u) =>
          `id -u ${u} >/dev/null 2>&1 || useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin ${u}`,
      );
      await remote.runAsRoot([...createUsers, ...dirs].join(" && "));
      const binaries: (keyof typeof versioned | "fabio")[] = [
        "consul",
        "nomad",
        "consul-template",
        ...(host.roles.includes("vault") ? (["vault"] as const) : []),
        ...(fabioOnClients && host.roles.includes("client") ? (["fabio"] as const) : []),
      ];
      let uploaded = 0;
      for (const name of binaries) {
        const outcome = await remote.uploadFile(local[name], `${layout.binDir}/${name}`, { mode: 0o755 });
        if (outcome !== "unchanged") uploaded++;
      }
      const versions = await remote.run(
        binaries.map((b) => `${shellQuote(`${layout.binDir}/${b}`)} ${b === "fabio" ? "-v" : "version"} | head -1`).join("; "),
      );
      let docker: string[] = [];
      if (dockerClients && host.roles.includes("client")) {
        const [id = "", versionId = "", ...idLike] = (facts[1] ?? "").split(" ");
        const result = await ensureDockerEngine(config, host.name, remote, { id, versionId, idLike: idLike.join(" ") }, log);
        docker = result.changes;
      }
      return { uploaded, docker, versions: versions.stdout.trim().split("\n") };
    },
    { concurrency: config.concurrency },
  );
  const results = requireAllSucceeded("prepare", outcomes);
  const uploaded = results.reduce((sum, r) => sum + r.uploaded, 0);
  const dockerChanged = results.filter((r) => r.docker.length).length;
  const summary = uploaded ? `${uploaded} binaries uploaded` : "binaries up to date";
  if (!dockerClients) return summary;
  return `${summary}; Docker Engine ${dockerChanged ? `changed on ${dockerChanged} clients (${[...new Set(results.flatMap((r) => r.docker))].join(", ")})` : "up to date"}`;
}

type BinaryName = "consul" | "nomad" | "vault" | "consul-template";

/**
 * Local paths of the binaries to upload. Fabio is not a HashiCorp release, so the
 * exec profile's Fabio is always the cached Go build.
 */
async function localBinaries(
  config: ClusterConfig,
  versioned: Record<BinaryName, ToolSpec>,
  withFabio: boolean,
  log: (line: string) => void,
): Promise<Record<BinaryName | "fabio", string>> {
  const paths = {} as Record<BinaryName | "fabio", string>;
  if (config.install.method === "download") {
    const source = releaseSource(config.install);
    for (const [name, spec] of Object.entries(versioned) as [BinaryName, ToolSpec][]) {
      paths[name] = (await ensureReleaseBinary(name, spec.version, source, { log })).path;
    }
  } else {
    for (const [name, spec] of Object.entries(versioned) as [BinaryName, ToolSpec][]) {
      await ensureBinary(spec, { log });
      paths[name] = binaryPath(spec);
    }
  }
  if (withFabio) {
    await ensureBinary(tools.fabio, { log });
    paths.fabio = binaryPath(tools.fabio);
  }
  return paths;
}
