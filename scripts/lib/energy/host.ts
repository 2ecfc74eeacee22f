/**
 * Reads of the host's pseudo-files go through one small interface so tests can
 * point the exporter at generated trees and inject failures (a root process
 * cannot be denied access by file modes, so EACCES is simulated here).
 */
import { closeSync, openSync, readdirSync, readSync, statSync } from "node:fs";
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
  /**
   * Like readKept, into `into` from its start with one read (the exporter's
   * counters are far smaller than a page, and the kernel hands a pseudo-file's
   * whole text to one read that has room for it); returns the bytes read. A
   * result of `into.length` may be cut short: read the file with readKept then.
   */
  readKeptInto?(path: string, into: Buffer): number;
  /** whether `path` exists, without an exception when it does not (cheaper than a failed read) */
  exists?(path: string): boolean;
  /**
   * What a folder's listing depends on: inode, link count (2 + subfolders on
   * cgroupfs, ext4 and tmpfs) and change times; undefined when it is missing.
   * One stat: cheaper than listing hundreds of entries.
   */
  folderStamp?(path: string): FolderStamp | undefined;
  /** every entry name in `path` (files too); [] when it does not exist. Cheaper than listDirs. */
  listNames?(path: string): string[];
  release?(dir: string): void;
}

export interface FolderStamp {
  ino: number;
  nlink: number;
  mtimeMs: number;
  ctimeMs: number;
  isFolder: boolean;
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

/**
 * The descriptor of a kept file, opened on first use; `undefined` when the
 * bound is reached (the caller then opens and closes it for this read).
 */
function keptFd(path: string): number | undefined {
  let fd = kept.get(path);
  if (fd === undefined) {
    if (kept.size >= maxKept) return undefined;
    fd = openSync(path, "r");
    kept.set(path, fd);
  }
  return fd;
}

/** a read of a kept file failed (a removed cgroup's file fails with ENODEV): close it, the next read opens the new one */
function dropKept(path: string, fd: number): void {
  kept.delete(path);
  closeSync(fd);
}

/**
 * Folders found missing by the last listing (docker parents on a node without
 * docker, v1 controllers a host does not mount): checked with a stat that does
 * not throw, instead of a readdir that fails with an exception every tick.
 */
const missingDirs = new Set<string>();
const maxMissingDirs = 256;

export const fsHostReader: HostReader = {
  readText: readWhole,
  readKept(path) {
    const fd = keptFd(path);
    if (fd === undefined) return readWhole(path);
    try {
      return readFd(fd);
    } catch (error) {
      dropKept(path, fd);
      throw error;
    }
  },
  readKeptInto(path, into) {
    const fd = keptFd(path);
    if (fd === undefined) {
      const once = openSync(path, "r");
      try {
        return readSync(once, into, 0, into.length, 0);
      } finally {
        closeSync(once);
      }
    }
    try {
      return readSync(fd, into, 0, into.length, 0);
    } catch (error) {
      dropKept(path, fd);
      throw error;
    }
  },
  exists(path) {
    try {
      return statSync(path, { throwIfNoEntry: false }) !== undefined;
    } catch {
      return false; // ENOTDIR: a file on the way
    }
  },
  folderStamp(path) {
    let stat;
    try {
      stat = statSync(path, { throwIfNoEntry: false });
    } catch {
      return undefined; // ENOTDIR: a file on the way
    }
    if (stat === undefined) return undefined;
    return { ino: stat.ino, nlink: stat.nlink, mtimeMs: stat.mtimeMs, ctimeMs: stat.ctimeMs, isFolder: stat.isDirectory() };
  },
  listNames(path) {
    if (missingDirs.has(path)) {
      let stat;
      try {
        stat = statSync(path, { throwIfNoEntry: false });
      } catch {
        return []; // ENOTDIR
      }
      if (stat === undefined || !stat.isDirectory()) return [];
      missingDirs.delete(path);
    }
    try {
      return readdirSync(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT" || (error as NodeJS.ErrnoException).code === "ENOTDIR") {
        if (missingDirs.size >= maxMissingDirs) missingDirs.clear();
        missingDirs.add(path);
        return [];
      }
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
