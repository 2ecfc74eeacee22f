/**
 * Installing files and services on a node without needless restarts: a unit is
 * restarted only when one of its files changed, and started when it is not running.
 */
import type { RemoteHost } from "../remote/ssh.ts";
import type { PlannedFile } from "../render/plan.ts";

/** Upload planned files; returns the paths whose content or metadata changed. */
export async function installFiles(remote: RemoteHost, files: PlannedFile[]): Promise<string[]> {
  const changed: string[] = [];
  for (const file of files) {
    const outcome = await remote.uploadContent(file.content, file.path, {
      mode: file.mode,
      owner: file.owner,
      group: file.group,
    });
    if (outcome !== "unchanged") changed.push(file.path);
  }
  return changed;
}

export type ServiceOutcome = "started" | "restarted" | "unchanged";

/**
 * Make sure a unit is enabled and running with its current files. `changed`
 * says whether any of its files changed in this run; only then, or when its
 * binary was replaced since it started, is a running unit restarted (or
 * reloaded, when `reload` is set and the binary is the same).
 */
export async function ensureService(
  remote: RemoteHost,
  unit: string,
  options: { changed: boolean; unitFileChanged: boolean; reload?: boolean },
): Promise<ServiceOutcome> {
  if (options.unitFileChanged) await remote.runAsRoot("systemctl daemon-reload");
  // the running binary: uploads replace files atomically, so an upgraded binary shows as "(deleted)"
  const probe = await remote.runAsRoot(
    `systemctl is-active ${unit}; readlink /proc/$(systemctl show -p MainPID --value ${unit})/exe || true`,
    { allowFailure: true },
  );
  const [state, exe = ""] = probe.stdout.trim().split("\n");
  const active = state === "active";
  if (!active) {
    await remote.runAsRoot(`systemctl enable --now ${unit}`, { timeoutMs: 120_000 });
    return "started";
  }
  await remote.runAsRoot(`systemctl enable ${unit}`, { allowFailure: true });
  const binaryReplaced = exe.endsWith(" (deleted)");
  if (!options.changed && !binaryReplaced) return "unchanged";
  const action = options.reload && !binaryReplaced ? "reload" : "restart";
  await remote.runAsRoot(`systemctl ${action} ${unit}`, { timeoutMs: 120_000 });
  return "restarted";
}

/** Files of a plan under a directory prefix (e.g. everything for Consul). */
export function filesUnder(files: PlannedFile[], ...prefixes: string[]): PlannedFile[] {
  return files.filter((f) => prefixes.some((p) => f.path.startsWith(p)));
}
