/**
 * prepare: OS facts, service users, directories and the binaries. The binaries are
 * made ready on the operator's machine (nodes may have no internet) and uploaded:
 * `install.method: upload` takes them from the local build cache (air-gapped and test
 * installs), `download` from HashiCorp's releases, signature and checksum verified, and
 * `auto` (the default) the releases when the release server answers (binaries/source.ts).
 */
import { posix } from "node:path";
import { binaryPath, ensureBinary } from "../binaries/build.ts";
import { type ToolSpec, tools } from "../binaries/catalog.ts";
import { ensureReleaseBinary, releaseSource } from "../binaries/releases.ts";
import { binarySourcePlan } from "../binaries/source.ts";
import { checkUpgradePaths, versionFromOutput } from "../binaries/upgrade-path.ts";
import { runtimeProfile } from "../config/schema.ts";
import type { ClusterConfig } from "../config/schema.ts";
import type { StartActivity } from "../cli/output.ts";
import { ensureDockerEngine } from "../docker/install.ts";
import { OperationError } from "../errors.ts";
import { onEachHost, requireAllSucceeded } from "../remote/fanout.ts";
import { sh } from "../remote/command.ts";
import { localFileSha256 } from "../remote/ssh.ts";
import type { DirectorySpec } from "../remote/remote.ts";
import { type NodeLayout, nodeLayout } from "../render/layout.ts";
import type { InventoryHost } from "../inventory/schema.ts";
import { installBinaries, parseListing, readListingCommand } from "./binary-listing.ts";
import type { ClusterRun } from "./run-context.ts";
import type { Stage } from "./stage.ts";

const users = ["consul", "nomad", "vault"];
export const factsEnd = "--- hashistack facts ---";
/** the commands the facts look up, one labelled line each (`name:path`, empty when missing) */
export const probedCommands = ["systemctl", "zstd"] as const;
const probeCommands = probedCommands.map((name) => `echo "${name}:$(command -v ${name})"`).join("; ");

export const prepareStage: Stage = {
  name: "prepare",
  description: "OS facts, service users, directories and the binaries on every node",
  run: runPrepare,
};

async function runPrepare(run: ClusterRun): Promise<string> {
  const { config } = run;
  const versioned = {
    consul: { ...tools.consul, version: config.versions.consul },
    nomad: { ...tools.nomad, version: config.versions.nomad },
    vault: { ...tools.vault, version: config.versions.vault },
    "consul-template": { ...tools["consul-template"], version: config.versions.consulTemplate },
  };
  const onClients = clientTools(config);
  // the docker profile's clients run Docker Engine
  const dockerClients = runtimeProfile(config) === "docker";
  const progress = { log: (line: string) => run.reporter.debug(line), activity: (title: string) => run.reporter.activity(title) };
  const local = await localBinaries(config, versioned, onClients, progress, (line) => run.reporter.info(line));
  const layout = nodeLayout();
  await checkInstalledVersions(run, versioned, local, layout);
  const outcomes = await onEachHost(
    run.inventory.hosts,
    async (host) => {
      const remote = run.remote(host);
      const binaries: (BinaryName | ClientTool)[] = [
        "consul",
        "nomad",
        "consul-template",
        ...(host.roles.includes("vault") ? (["vault"] as const) : []),
        ...(host.roles.includes("client") ? onClients : []),
      ];
      // the OS facts and the installed binaries' listing in one round trip
      const answer = (
        await remote.run(
          `uname -s -m; . /etc/os-release && echo "$ID $VERSION_ID $ID_LIKE"; ${probeCommands}; echo ${factsEnd}; ${readListingCommand(
            layout.binDir,
            binaries.map((b) => posix.join(layout.binDir, b)),
          )}`,
        )
      ).stdout;
      const end = answer.indexOf(factsEnd);
      const facts = (end < 0 ? answer : answer.slice(0, end)).split("\n");
      const listing = end < 0 ? new Map() : parseListing(answer.slice(end + factsEnd.length));
      if (facts[0] !== "Linux x86_64") {
        throw new OperationError(`${host.name}: unsupported platform '${facts[0]}'; the binaries are built for Linux x86_64.`);
      }
      // labelled lines: a missing command prints an empty value instead of shifting the rest
      const commandPath = (name: (typeof probedCommands)[number]) =>
        facts.find((line) => line.startsWith(`${name}:`))?.slice(name.length + 1);
      if (!commandPath("systemctl")) throw new OperationError(`${host.name}: systemd is required (no systemctl found).`);
      await remote.runAsRoot(
        users
          .map(
            (u) =>
              sh`id -u ${u} >/dev/null 2>&1 || useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin ${u}`,
          )
          .join(" && "),
      );
      await remote.mkdir(nodeDirectories(host, layout));
      const { uploaded, versions } = await installBinaries(
        remote,
        layout.binDir,
        binaries.map((name) => ({ name, localPath: local[name], versionArgs: [versionFlag[name] ?? "version"] })),
        listing,
        // zstd-packed to a host that can unpack them (binaries/compressed.ts)
        { zstd: Boolean(commandPath("zstd")) },
      );
      let docker: string[] = [];
      if (dockerClients && host.roles.includes("client")) {
        const [id = "", versionId = "", ...idLike] = (facts[1] ?? "").split(" ");
        const result = await ensureDockerEngine(
          config,
          host.name,
          remote,
          { id, versionId, idLike: idLike.join(" ") },
          progress.log,
        );
        docker = result.changes;
      }
      return { uploaded, docker, versions };
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

/** The directories every node needs, with the modes and owners the agents expect. */
export function nodeDirectories(host: InventoryHost, layout: NodeLayout): DirectorySpec[] {
  return [
    { path: layout.consul.dataDir, mode: 0o750, owner: "consul" },
    { path: layout.consul.configDir, mode: 0o755 },
    { path: layout.consul.tlsDir, mode: 0o750, group: "consul" },
    { path: layout.nomad.configDir, mode: 0o755 },
    { path: layout.nomad.tlsDir, mode: 0o750, group: "nomad" },
    host.roles.includes("server")
      ? { path: layout.nomad.dataDir, mode: 0o750, owner: "nomad" }
      : { path: layout.nomad.dataDir, mode: 0o711 },
    // owned by the users the jobs run as: nobody (Prometheus) and the Grafana image's uid
    { path: `${layout.nomad.hostVolumesDir}/prometheus`, mode: 0o750, owner: 65534 },
    { path: `${layout.nomad.hostVolumesDir}/grafana`, mode: 0o750, owner: 472 },
    { path: layout.consulTemplate.configDir, mode: 0o750 },
    { path: layout.consulTemplate.templatesDir, mode: 0o750 },
    ...(host.roles.includes("vault")
      ? [
          { path: layout.vault.configDir, mode: 0o755 },
          { path: layout.vault.tlsDir, mode: 0o750, group: "vault" },
          { path: layout.vault.dataDir, mode: 0o700, owner: "vault" },
          { path: posix.dirname(layout.vault.auditLog), mode: 0o750, owner: "vault" },
        ]
      : []),
  ];
}

type BinaryName = "consul" | "nomad" | "vault" | "consul-template";
/** the platform jobs' own programs, installed on the clients in the exec profile */
type ClientTool = "fabio" | "prometheus" | "alertmanager";

const versionFlag: Partial<Record<BinaryName | ClientTool, string>> = {
  fabio: "-v",
  prometheus: "--version",
  alertmanager: "--version",
};

/**
 * The exec profile has no image registry: the enabled platform jobs' programs
 * (Fabio, Prometheus 3, Alertmanager) are installed on the clients, in /usr/local/bin.
 */
export function clientTools(config: ClusterConfig): ClientTool[] {
  if (runtimeProfile(config) !== "exec") return [];
  const { jobs } = config;
  return (["fabio", "prometheus", "alertmanager"] as const).filter((name) => jobs[name].enabled);
}

/**
 * Local paths of the binaries to upload. Fabio, Prometheus and Alertmanager are not
 * HashiCorp releases: they are always the cached Go builds.
 */
async function localBinaries(
  config: ClusterConfig,
  versioned: Record<BinaryName, ToolSpec>,
  onClients: ClientTool[],
  progress: { log: (line: string) => void; activity: StartActivity },
  say: (line: string) => void,
): Promise<Record<BinaryName | ClientTool, string>> {
  const paths = {} as Record<BinaryName | ClientTool, string>;
  const source = releaseSource(config.install);
  const plan = await binarySourcePlan(config.install.method, Object.values(versioned), source);
  say(plan.line);
  for (const [name, spec] of Object.entries(versioned) as [BinaryName, ToolSpec][]) {
    if (plan.sources[name] === "release") {
      // a failed verification throws: it is never a reason to build instead
      paths[name] = (await ensureReleaseBinary(name, spec.version, source, progress)).path;
    } else {
      await ensureBinary(spec, progress);
      paths[name] = binaryPath(spec);
    }
  }
  for (const name of onClients) {
    await ensureBinary(tools[name], progress);
    paths[name] = binaryPath(tools[name]);
  }
  return paths;
}

/**
 * Before any upload: the configured versions must be a supported step from the
 * installed ones. A binary whose recorded checksum (prepare's listing) is the local
 * build's is already the wanted version, so a no-op run asks no version at all.
 */
async function checkInstalledVersions(
  run: ClusterRun,
  versioned: Record<"consul" | "nomad" | "vault", ToolSpec>,
  local: Record<string, string>,
  layout: NodeLayout,
): Promise<void> {
  const changes = [];
  const products = (["consul", "nomad", "vault"] as const).flatMap((product) => {
    const host = run.inventory.hosts.find((h) => product !== "vault" || h.roles.includes("vault"));
    return host ? [{ product, host, path: `${layout.binDir}/${product}` }] : [];
  });
  // one listing read per probed host
  const listings = new Map<string, Promise<Map<string, { sha256: string }>>>();
  for (const { host } of products) {
    if (listings.has(host.name)) continue;
    const paths = products.filter((p) => p.host === host).map((p) => p.path);
    listings.set(
      host.name,
      run
        .remote(host)
        .run(readListingCommand(layout.binDir, paths))
        .then((answer) => parseListing(answer.stdout)),
    );
  }
  for (const { product, host, path } of products) {
    const listed = (await listings.get(host.name))?.get(path);
    if (listed && local[product] && listed.sha256 === (await localFileSha256(local[product]))) continue;
    const probe = await run.remote(host).run(sh`test -x ${path} && ${path} version | head -1`, { allowFailure: true });
    const installed = probe.code === 0 ? versionFromOutput(probe.stdout) : undefined;
    if (installed && installed !== versioned[product].version)
      changes.push({ product, installed, wanted: versioned[product].version });
  }
  checkUpgradePaths(changes);
}
