/**
 * Installing files and services on a node without needless restarts: a unit is
 * restarted only when one of its files changed, and started when it is not running.
 */
import type { Remote } from "../remote/remote.ts";
import type { PlannedFile } from "../render/plan.ts";

/** Upload planned files; returns the paths whose content or metadata changed. */
export async function installFiles(remote: Remote, files: PlannedFile[]): Promise<string[]> {
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
  remote: Remote,
  unit: string,
  options: { changed: boolean; unitFileChanged: boolean; reload?: boolean },
): Promise<ServiceOutcome> {
  if (options.unitFileChanged) await remote.reloadUnits();
  const service = remote.service(unit);
  const { active, binaryReplaced } = await service.status();
  if (!active) {
    await service.enable({ now: true });
    return "started";
  }
  await service.enable();
  if (!options.changed && !binaryReplaced) return "unchanged";
  if (options.reload && !binaryReplaced) await service.reload();
  else await service.restart();
  return "restarted";
}

/** Files of a plan under a directory prefix (e.g. everything for Consul). */
export function filesUnder(files: PlannedFile[], ...prefixes: string[]): PlannedFile[] {
  return files.filter((f) => prefixes.some((p) => f.path.startsWith(p)));
}
