import { chmod, mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { writeFileAtomic } from "../util/fs.ts";
import type { HostPlan } from "./plan.ts";

export interface WrittenFile {
  host: string;
  path: string;
  mode: number;
  secret: boolean;
}

/**
 * Write every host's files under `outDir/<host>/<path on node>`. Files that hold
 * secrets keep their restrictive mode; the host folders are 0700 because they
 * contain gossip keys and tokens.
 */
export async function writeRenderedPlan(plans: HostPlan[], outDir: string): Promise<WrittenFile[]> {
  await mkdir(outDir, { recursive: true, mode: 0o700 });
  await chmod(outDir, 0o700);
  const written: WrittenFile[] = [];
  for (const { host, files } of plans) {
    const hostDir = join(outDir, host.name);
    await rm(hostDir, { recursive: true, force: true }); // no stale files from an older topology
    await mkdir(hostDir, { recursive: true, mode: 0o700 });
    for (const file of files) {
      const target = join(hostDir, file.path);
      await writeFileAtomic(target, file.content, file.secret ? 0o600 : file.mode);
      written.push({ host: host.name, path: target, mode: file.secret ? 0o600 : file.mode, secret: file.secret });
    }
  }
  return written;
}
