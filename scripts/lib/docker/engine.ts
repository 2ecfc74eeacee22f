/**
 * Docker Engine on the clients of a docker-profile cluster: which package
 * version, how it is installed per OS family, and the daemon's configuration.
 * Pure functions; scripts/lib/docker/install.ts runs them on the hosts.
 */
import { InputError } from "../errors.ts";
import { shellJoin, shellQuote } from "../remote/quote.ts";

export interface OsRelease {
  /** /etc/os-release ID, e.g. debian, ubuntu */
  id: string;
  versionId: string;
  /** /etc/os-release ID_LIKE, space-separated */
  idLike?: string;
}

/**
 * docker.io versions pinned per OS release: Debian's own packages (no third-party
 * apt repository, so air-gapped mirrors of Debian carry them). Other releases
 * name their version in jobs.docker.version.
 */
export const pinnedDockerVersions: Record<string, string> = {
  "debian 12": "20.10.24+dfsg1-1+deb12u1+b6",
};

export type OsFamily = "debian";

export function osFamily(os: OsRelease, host: string): OsFamily {
  const ids = [os.id, ...(os.idLike ?? "").split(/\s+/)].filter(Boolean);
  if (ids.includes("debian") || ids.includes("ubuntu")) return "debian";
  throw new InputError(`${host}: Docker Engine can only be installed on Debian or Ubuntu (found ${os.id} ${os.versionId}).`, {
    hint: "Use a Debian/Ubuntu image for the clients, or jobs.runtime: exec.",
  });
}

/** The docker.io version for a host: the configured one, else the pin for its release. */
export function dockerVersionFor(os: OsRelease, host: string, configured?: string): string {
  osFamily(os, host);
  const version = configured ?? pinnedDockerVersions[`${os.id} ${os.versionId}`];
  if (!version) {
    throw new InputError(`${host}: no pinned docker.io version for ${os.id} ${os.versionId}.`, {
      hint: `Set jobs.docker.version in the cluster config to the docker.io version of that release ('apt-cache policy docker.io' on the host); pinned here: ${Object.keys(pinnedDockerVersions).join(", ")}.`,
    });
  }
  return version;
}

export interface DaemonOptions {
  /** registries Docker may pull from over plain HTTP: only the cluster's own registry address */
  insecureRegistries?: string[];
}

/**
 * /etc/docker/daemon.json. No `hosts`: Debian's unit passes `-H fd://` (the unix
 * socket only; a `hosts` entry here would conflict with it), so there is no TCP
 * socket. `live-restore` keeps containers running while dockerd restarts.
 */
export function daemonJson(options: DaemonOptions = {}): string {
  const config: Record<string, unknown> = {
    "log-driver": "json-file",
    "log-opts": { "max-size": "10m", "max-file": "3" },
    "live-restore": true,
    "no-new-privileges": true,
  };
  if (options.insecureRegistries?.length) config["insecure-registries"] = [...options.insecureRegistries].sort();
  return `${JSON.stringify(config, null, 2)}\n`;
}

export const daemonJsonPath = "/etc/docker/daemon.json";
/** where uploaded .deb files are kept on a node */
export const nodeDebDir = "/var/cache/hashistack/debs";

const aptEnv = "DEBIAN_FRONTEND=noninteractive";

/** Install (or move to) the pinned docker.io from the host's own apt sources. */
export function aptInstallCommand(version: string): string {
  return [
    `${aptEnv} apt-get update -qq`,
    `${aptEnv} apt-get install -y -qq --no-install-recommends ${shellQuote(`docker.io=${version}`)}`,
  ].join(" && ");
}

/**
 * Install from .deb files already on the node; nothing is downloaded (air-gapped,
 * local nodes). dpkg, not apt: the files are exactly what apt's simulation
 * against this node's status said is missing, and apt refuses local files on a
 * node without package lists ("Pathname to install is not absolute").
 */
export function debInstallCommand(files: string[]): string {
  if (!files.length) throw new Error("debInstallCommand needs files");
  return `${aptEnv} dpkg --install --force-confold ${shellJoin(files.map((f) => `${nodeDebDir}/${f}`))}`;
}

/** The installed docker.io version, empty when it is not installed. */
export const installedVersionCommand = `dpkg-query -W -f='\${Status} \${Version}\\n' docker.io 2>/dev/null | sed -n 's/^install ok installed //p'`;

/** `Inst name (version …` lines of an `apt-get -s install` run: what a host lacks. */
export function parseSimulatedInstall(output: string): { name: string; version: string }[] {
  const packages: { name: string; version: string }[] = [];
  for (const line of output.split("\n")) {
    // "Inst runc (1.1.5+ds1-1+deb12u1 Debian:12.15/oldstable [amd64])" or, for an upgrade, "Inst x [old] (new …"
    const match = /^Inst (\S+)(?: \[[^\]]*\])? \((\S+) /.exec(line);
    if (match?.[1] && match[2]) packages.push({ name: match[1], version: match[2] });
  }
  return packages;
}

/** apt-get download's file name for a package version (an epoch's ':' is written %3a). */
export function debFileName(name: string, version: string, arch = "amd64"): string {
  return `${name}_${version.replace(":", "%3a")}_${arch}.deb`;
}
