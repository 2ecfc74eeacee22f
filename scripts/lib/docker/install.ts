/**
 * prepare's Docker step on one client: daemon.json first (so a fresh install
 * starts with it), then docker.io at the pinned version from apt or from
 * uploaded .debs, then the service enabled and running. Idempotent: with the
 * version installed and daemon.json unchanged it installs and restarts nothing.
 */
import { type ClusterConfig, dockerInstallMethod } from "../config/schema.ts";
import { OperationError } from "../errors.ts";
import type { Remote } from "../remote/remote.ts";
import { debsForNode } from "./debs.ts";
import {
  aptInstallCommand,
  daemonJson,
  daemonJsonPath,
  debInstallCommand,
  dockerVersionFor,
  installedVersionCommand,
  nodeDebDir,
  type OsRelease,
} from "./engine.ts";

export interface DockerStepResult {
  version: string;
  changes: string[];
}

/** The registries the clients may pull from over plain HTTP: only the cluster's own, when it is insecure. */
export function insecureRegistries(config: ClusterConfig): string[] {
  return config.jobs.registry?.insecure ? [config.jobs.registry.address] : [];
}

export async function ensureDockerEngine(
  config: ClusterConfig,
  host: string,
  remote: Remote,
  os: OsRelease,
  log: (line: string) => void,
): Promise<DockerStepResult> {
  const version = dockerVersionFor(os, host, config.jobs.docker.version);
  const changes: string[] = [];
  await remote.runAsRoot("install -d -m 0755 /etc/docker");
  const daemon = await remote.uploadContent(daemonJson({ insecureRegistries: insecureRegistries(config) }), daemonJsonPath, {
    mode: 0o644,
  });
  if (daemon !== "unchanged") changes.push("daemon.json");

  const installed = (await remote.run(installedVersionCommand)).stdout.trim();
  let freshInstall = false;
  if (installed !== version) {
    if (dockerInstallMethod(config) === "apt") {
      log(`${host}: installing docker.io ${version} with apt`);
      await remote.runAsRoot(aptInstallCommand(version), { timeoutMs: 15 * 60_000 });
    } else {
      const status = (await remote.run("cat /var/lib/dpkg/status")).stdout;
      const debs = await debsForNode(status, version, host, log);
      await remote.runAsRoot(`install -d -m 0755 ${nodeDebDir}`);
      for (const deb of debs) await remote.uploadFile(deb.path, `${nodeDebDir}/${deb.file}`, { mode: 0o644 });
      log(`${host}: installing docker.io ${version} from ${debs.length} uploaded .deb files`);
      await remote.runAsRoot(debInstallCommand(debs.map((d) => d.file)), { timeoutMs: 10 * 60_000 });
    }
    freshInstall = true;
    changes.push(installed ? `docker.io ${installed} → ${version}` : `docker.io ${version} installed`);
  }

  // a running daemon reads daemon.json only at start (log options are not reloadable)
  const active = (await remote.run("systemctl is-active docker.service", { allowFailure: true })).stdout.trim() === "active";
  const enabled = (await remote.run("systemctl is-enabled docker.service", { allowFailure: true })).stdout.trim() === "enabled";
  if (!enabled) await remote.runAsRoot("systemctl enable docker.service docker.socket");
  if (!active) {
    await remote.runAsRoot("systemctl start docker.service");
    if (!freshInstall) changes.push("docker started");
  } else if (daemon !== "unchanged" && !freshInstall) {
    await remote.runAsRoot("systemctl restart docker.service");
    changes.push("docker restarted");
  }
  const info = await remote.runAsRoot("docker info --format '{{.ServerVersion}} {{.LoggingDriver}} {{.LiveRestoreEnabled}}'", {
    allowFailure: true,
    timeoutMs: 30_000,
  });
  if (info.code !== 0) {
    const journal = await remote.runAsRoot("journalctl -u docker.service -n 15 --no-pager", { allowFailure: true });
    throw new OperationError(`${host}: Docker Engine does not answer after installation.`, {
      details: [...info.stderr.trim().split("\n").slice(-3), ...journal.stdout.trim().split("\n")],
      hint: "See 'journalctl -u docker' on the node.",
    });
  }
  // the daemon must listen on its unix socket only
  const tcp = await remote.runAsRoot("ss -Hltnp | grep -w dockerd || true");
  if (tcp.stdout.trim()) {
    throw new OperationError(`${host}: dockerd listens on TCP: ${tcp.stdout.trim()}.`, {
      hint: "Remove the -H tcp://… option from docker.service or its drop-ins; the cluster reaches Docker only through its unix socket.",
    });
  }
  return { version, changes };
}
