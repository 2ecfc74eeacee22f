import { readFileSync } from "node:fs";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { OperationError } from "../errors.ts";

/**
 * A cross-process lock (mkdir is atomic). Stale locks from a dead process are
 * taken over, so an interrupted build never blocks the next one.
 */
export async function withLock<T>(path: string, action: () => Promise<T>, waitMs = 60 * 60 * 1000): Promise<T> {
  await mkdir(dirname(path), { recursive: true });
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      await mkdir(path);
      await writeFile(`${path}/pid`, String(process.pid));
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const owner = Number(await readFile(`${path}/pid`, "utf8").catch(() => "0"));
      if (owner && !isAlive(owner)) {
        await rm(path, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for lock ${path} held by pid ${owner}`);
      await sleep(500);
    }
  }
  try {
    return await action();
  } finally {
    await rm(path, { recursive: true, force: true });
  }
}

/**
 * Take a lock or fail at once naming its holder (for commands that must not run
 * twice against the same cluster). A lock left by a dead process is taken over.
 */
export async function tryLock(path: string, what: string): Promise<() => Promise<void>> {
  await mkdir(dirname(path), { recursive: true });
  for (;;) {
    try {
      await mkdir(path);
      await writeFile(`${path}/pid`, String(process.pid));
      return () => rm(path, { recursive: true, force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const owner = Number(await readFile(`${path}/pid`, "utf8").catch(() => "0"));
      if (owner && isAlive(owner)) {
        throw new OperationError(`${what} is already running (pid ${owner}).`, {
          hint: `Wait for it to finish, or stop that process. If no such process exists, remove ${path}.`,
        });
      }
      if (!owner) await sleep(200); // the holder may not have written its pid yet
      await rm(path, { recursive: true, force: true });
    }
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
  // a killed process stays a zombie until its parent reaps it: that holder is gone too
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return true; // no procfs: trust kill(0)
  }
}
