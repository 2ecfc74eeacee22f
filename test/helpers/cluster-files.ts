import { mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import type { HostPlan } from "../../scripts/lib/render/plan.ts";
import { writeFileAtomic } from "../../scripts/lib/util/fs.ts";

/** Write a host's rendered files where its layout says (a temp root in tests). */
export async function writeHostFiles(plan: HostPlan, match: (path: string) => boolean = () => true): Promise<void> {
  for (const file of plan.files.filter((f) => match(f.path))) {
    await mkdir(dirname(file.path), { recursive: true });
    await writeFileAtomic(file.path, file.content, file.mode);
  }
}
