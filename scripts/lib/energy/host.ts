/**
 * Reads of the host's pseudo-files go through one small interface so tests can
 * point the exporter at generated trees and inject failures (a root process
 * cannot be denied access by file modes, so EACCES is simulated here).
 */
import { closeSync, openSync, readdirSync, readSync } from "node:fs";
import { sep } from "node:path";

export interface HostReader {
  /** the file's text; throws the fs error (ENOENT, EACCES, …) */
  readText(path: string): string;
  /** names of the subdirectories of `path`; [] when it does not exist */
  listDirs(path: string): string[];
  /**
   * Like readText, keeping the file open between reads (kernel pseudo-files
   * give fresh content on every read from offset 0, and a removed one fails,
   * which closes it). `release` closes files under a directory that went away.
   */
  readKept?(path: string): string;
  /** every entry name in `path` (files too); [] when it does not exist. Cheaper than listDirs. */
  listNames?(path: string): string[];
  release?(dir: string): void;
}

// one buffer for every read: pseudo-files are small, and the exporter reads
// hundreds of them a second (open, read, close; no stat, no buffer per file)
let buffer = Buffer.allocUnsafe(64 * 1024);

function readWhole(path: string): string {
  const fd = openSync(path, "r");
  try {
    return readFd(fd);
  } finally {
    closeSync(fd);
  }
}

/** the whole file from offset 0 (positional reads: a kept descriptor is re-read in place) */
function readFd(fd: number): string {
  let length = 0;
  for (;;) {
    const n = readSync(fd, buffer, length, buffer.length - length, length);
    if (n === 0) break;
    length += n;
    if (length === buffer.length) {
      const bigger = Buffer.allocUnsafe(buffer.length * 2);
      buffer.copy(bigger);
      buffer = bigger;
    }
  }
  return buffer.toString("utf8", 0, length);
}

/** open files kept for readKept; bounded so a node with thousands of tasks stays far from the fd limit */
const kept = new Map<string, number>();
const maxKept = 800;

export const fsHostReader: HostReader = {
  readText: readWhole,
  readKept(path) {
    let fd = kept.get(path);
    if (fd === undefined) {
      if (kept.size >= maxKept) return readWhole(path);
      fd = openSync(path, "r");
      kept.set(path, fd);
    }
    try {
      return readFd(fd);
    } catch (error) {
      // a removed cgroup's file fails (ENODEV): close it, the next read opens the new one
      kept.delete(path);
      closeSync(fd);
      throw error;
    }
  },
  listNames(path) {
    try {
      return readdirSync(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT" || (error as NodeJS.ErrnoException).code === "ENOTDIR") return [];
      throw error;
    }
  },
  release(dir) {
    const prefix = dir.endsWith(sep) ? dir : dir + sep;
    for (const [path, fd] of kept) {
      if (path.startsWith(prefix)) {
        kept.delete(path);
        closeSync(fd);
      }
    }
  },
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
