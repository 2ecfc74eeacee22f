import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Run with state and inventories in a temp dir, so benchmarks never touch the user's clusters. */
export async function withIsolatedState<T>(prefix: string, action: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), `hashistack-${prefix}-`));
  const saved = { state: process.env.HASHISTACK_STATE_DIR, inventories: process.env.HASHISTACK_INVENTORY_DIR };
  process.env.HASHISTACK_STATE_DIR = join(dir, "state");
  process.env.HASHISTACK_INVENTORY_DIR = join(dir, "inventories");
  try {
    return await action(dir);
  } finally {
    if (saved.state === undefined) delete process.env.HASHISTACK_STATE_DIR;
    else process.env.HASHISTACK_STATE_DIR = saved.state;
    if (saved.inventories === undefined) delete process.env.HASHISTACK_INVENTORY_DIR;
    else process.env.HASHISTACK_INVENTORY_DIR = saved.inventories;
    await rm(dir, { recursive: true, force: true });
  }
}
