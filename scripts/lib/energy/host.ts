/**
 * Reads of the host's pseudo-files go through one small interface so tests can
 * point the exporter at generated trees and inject failures (a root process
 * cannot be denied access by file modes, so EACCES is simulated here).
 */
import { readdirSync, readFileSync } from "node:fs";

export interface HostReader {
  /** the file's text; throws the fs error (ENOENT, EACCES, …) */
  readText(path: string): string;
  /** names of the subdirectories of `path`; [] when it does not exist */
  listDirs(path: string): string[];
}

export const fsHostReader: HostReader = {
  readText: (path) => readFileSync(path, "utf8"),
  listDirs(path) {
    try {
      // symlinks count: /sys/class/powercap entries are links to the devices tree
      return readdirSync(path, { withFileTypes: true })
        .filter((e) => e.isDirectory() || e.isSymbolicLink())
        .map((e) => e.name);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT" || (error as NodeJS.ErrnoException).code === "ENOTDIR") return [];
      throw error;
    }
  },
};

export function errnoCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

/** Host roots: the real ones by default, fake trees in tests, /host/... in a container. */
export interface HostRoots {
  sysfs: string;
  procfs: string;
  cgroup: string;
}
