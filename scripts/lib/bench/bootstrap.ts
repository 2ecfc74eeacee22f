/**
 * Bootstrap figures on the local provider: wall time of the 5-node cluster from
 * empty nodes to verified-healthy, split by stage, and the no-op re-run.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createRecordingReporter } from "../cli/output.ts";
import { clusterConfigSchema } from "../config/schema.ts";
import { localProvider } from "../providers/local/provider.ts";
import type { ProviderContext } from "../providers/types.ts";
import { runStages } from "../stages/pipeline.ts";
import { statePaths } from "../state/paths.ts";

export interface BootstrapFigures {
  nodes: number;
  provisionSeconds: number;
  stagesSeconds: Record<string, number>;
  totalSeconds: number;
  noopRerunSeconds: number;
}

export async function benchBootstrap(log: (line: string) => void): Promise<BootstrapFigures> {
  const dir = await mkdtemp(join(tmpdir(), "hashistack-bench-bootstrap-"));
  const saved = { state: process.env.HASHISTACK_STATE_DIR, inventories: process.env.HASHISTACK_INVENTORY_DIR };
  process.env.HASHISTACK_STATE_DIR = join(dir, "state");
  process.env.HASHISTACK_INVENTORY_DIR = join(dir, "inventories");
  const config = clusterConfigSchema.parse({ name: "benchboot", provider: { local: { cidr: "10.93.0.0/24" } } });
  const context: ProviderContext = { config, state: statePaths(config.name), reporter: createRecordingReporter() };
  try {
    const started = Date.now();
    const inventory = await localProvider.up(context);
    const provisionSeconds = (Date.now() - started) / 1000;
    const records = await runStages(context, inventory);
    const totalSeconds = (Date.now() - started) / 1000;
    log(`first run ${totalSeconds.toFixed(1)} s`);
    const rerunStarted = Date.now();
    await runStages(context, inventory);
    const noopRerunSeconds = (Date.now() - rerunStarted) / 1000;
    const round = (n: number) => Math.round(n * 10) / 10;
    return {
      nodes: inventory.hosts.length,
      provisionSeconds: round(provisionSeconds),
      stagesSeconds: Object.fromEntries(Object.entries(records).map(([name, r]) => [name, r.seconds])),
      totalSeconds: round(totalSeconds),
      noopRerunSeconds: round(noopRerunSeconds),
    };
  } finally {
    await localProvider.down(context, { dryRun: false, keepState: false }).catch(() => undefined);
    if (saved.state === undefined) delete process.env.HASHISTACK_STATE_DIR;
    else process.env.HASHISTACK_STATE_DIR = saved.state;
    if (saved.inventories === undefined) delete process.env.HASHISTACK_INVENTORY_DIR;
    else process.env.HASHISTACK_INVENTORY_DIR = saved.inventories;
    await rm(dir, { recursive: true, force: true });
  }
}
