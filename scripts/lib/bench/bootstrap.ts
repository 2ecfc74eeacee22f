/**
 * Bootstrap figures on the local provider: wall time of the 5-node cluster from
 * empty nodes to verified-healthy with the platform jobs deployed, split by
 * stage, the no-op re-run (also split by stage) and adding a client (2 → 3). In the exec profile, or
 * in the docker profile with images built here and served from this machine
 * (as the docker-profile e2e does; the images stage's time is part of the run).
 */
import { createRecordingReporter } from "../cli/output.ts";
import { clusterConfigSchema } from "../config/schema.ts";
import { localProvider } from "../providers/local/provider.ts";
import type { ProviderContext } from "../providers/types.ts";
import { runStages } from "../stages/pipeline.ts";
import { statePaths } from "../state/paths.ts";
import { withIsolatedState } from "./isolated-state.ts";

export interface BootstrapFigures {
  runtime: "exec" | "docker";
  nodes: number;
  provisionSeconds: number;
  stagesSeconds: Record<string, number>;
  totalSeconds: number;
  noopRerunSeconds: number;
  /** per stage in the no-op re-run (platform = re-planning every job and finding no change) */
  noopStagesSeconds: Record<string, number>;
  /** after the no-op re-run: topology.clients 2 → 3, the provider's `up` (the new node) and a run of every stage */
  addClient: { totalSeconds: number; provisionSeconds: number; stagesSeconds: Record<string, number> };
}

const round = (n: number) => Math.round(n * 10) / 10;
const stageSeconds = (records: Awaited<ReturnType<typeof runStages>>) =>
  Object.fromEntries(Object.entries(records).map(([name, r]) => [name, r.seconds]));

/** the benchmarks' network (docs: e2e CIDRs); its bridge address serves the docker profile's images */
export const benchCidr = "10.95.0.0/24";
const benchRegistry = "10.95.0.1:5000";

export function benchBootstrap(log: (line: string) => void, runtime: "exec" | "docker" = "exec"): Promise<BootstrapFigures> {
  return withIsolatedState(`bench-bootstrap-${runtime}`, async () => {
    const jobs =
      runtime === "docker"
        ? { runtime, registry: { address: benchRegistry, build: true, insecure: true }, grafana: { enabled: false } }
        : { runtime };
    const config = clusterConfigSchema.parse({ name: "benchboot", provider: { local: { cidr: benchCidr } }, jobs });
    const context: ProviderContext = { config, state: statePaths(config.name), reporter: createRecordingReporter() };
    try {
      const started = Date.now();
      const inventory = await localProvider.up(context);
      const provisionSeconds = (Date.now() - started) / 1000;
      const records = await runStages(context, inventory);
      const totalSeconds = (Date.now() - started) / 1000;
      log(`${runtime} profile: first run ${totalSeconds.toFixed(1)} s`);
      const rerunStarted = Date.now();
      const rerun = await runStages(context, inventory);
      const noopRerunSeconds = (Date.now() - rerunStarted) / 1000;
      log(`${runtime} profile: no-op re-run ${noopRerunSeconds.toFixed(1)} s`);
      // one more client, as an operator adds one: raise topology.clients and run again
      const grown: ProviderContext = {
        ...context,
        config: { ...config, topology: { ...config.topology, clients: config.topology.clients + 1 } },
      };
      const addStarted = Date.now();
      const grownInventory = await localProvider.up(grown);
      const addProvisionSeconds = (Date.now() - addStarted) / 1000;
      const added = await runStages(grown, grownInventory);
      const addSeconds = (Date.now() - addStarted) / 1000;
      log(`${runtime} profile: adding a client ${addSeconds.toFixed(1)} s`);
      return {
        runtime,
        nodes: inventory.hosts.length,
        provisionSeconds: round(provisionSeconds),
        stagesSeconds: stageSeconds(records),
        totalSeconds: round(totalSeconds),
        noopRerunSeconds: round(noopRerunSeconds),
        noopStagesSeconds: stageSeconds(rerun),
        addClient: {
          totalSeconds: round(addSeconds),
          provisionSeconds: round(addProvisionSeconds),
          stagesSeconds: stageSeconds(added),
        },
      };
    } finally {
      // also removes the added client (down takes every node on disk)
      await localProvider.down(context, { dryRun: false, keepState: false }).catch(() => undefined);
    }
  });
}
