import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { tryLock } from "../../../scripts/lib/binaries/lock.ts";
import { tempDir } from "../../helpers/fixtures.ts";

describe("cluster lock", () => {
  it("refuses a second holder by name and pid, and takes over a lock whose process is gone", async () => {
    const dir = await tempDir("lock");
    const path = join(dir.path, "bootstrap.lock");
    const release = await tryLock(path, "A bootstrap of cluster 'x'");
    await expect(tryLock(path, "A bootstrap of cluster 'x'")).rejects.toThrow(
      `A bootstrap of cluster 'x' is already running (pid ${process.pid}).`,
    );
    await release();
    // a lock left by a killed run (a pid that no longer exists)
    await mkdir(path);
    await writeFile(join(path, "pid"), "999999999");
    const again = await tryLock(path, "A bootstrap of cluster 'x'");
    await again();
    await dir.remove();
  });
});
