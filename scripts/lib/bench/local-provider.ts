/**
 * Local provider figures: time from `up` to every node SSH-ready for several
 * cluster sizes (image cached), memory per idle node, and fan-out latency.
 */
import { readFile } from "node:fs/promises";
import { createRecordingReporter } from "../cli/output.ts";
import { clusterConfigSchema } from "../config/schema.ts";
import { ensureImage } from "../providers/local/image.ts";
import { type LocalNames, localNamesFor } from "../providers/local/names.ts";
import { containerPids } from "../providers/local/node.ts";
import { localProvider } from "../providers/local/provider.ts";
import type { ProviderContext } from "../providers/types.ts";
import { onEachHost, requireAllSucceeded } from "../remote/fanout.ts";
import { RemoteHost, sshTarget } from "../remote/ssh.ts";
import { statePaths } from "../state/paths.ts";
import { withIsolatedState } from "./isolated-state.ts";

export interface LocalProviderFigures {
  nodes: number;
  upSeconds: number;
  idleRssMbPerNode: number;
  fanoutFirstMs: number;
  fanoutWarmMs: number;
  downSeconds: number;
}

async function rssKb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
  return Number(status.match(/^VmRSS:\s+(\d+) kB$/m)?.[1] ?? 0);
}

export async function benchLocalProvider(sizes: number[], log: (line: string) => void): Promise<LocalProviderFigures[]> {
  await ensureImage(log); // image build time is not part of `up`
  return withIsolatedState("bench-local", async () => {
    const figures: LocalProviderFigures[] = [];
    for (const nodes of sizes) {
      const servers = nodes >= 3 ? 3 : 1;
      const config = clusterConfigSchema.parse({
        name: "bench",
        topology: { servers, clients: nodes - servers },
        provider: { local: { cidr: "10.95.0.0/24" } },
        concurrency: 16,
      });
      const context: ProviderContext = { config, state: statePaths(config.name), reporter: createRecordingReporter() };
      try {
        let started = Date.now();
        const inventory = await localProvider.up(context);
        const upSeconds = (Date.now() - started) / 1000;
        await new Promise((r) => setTimeout(r, 5000)); // let boot-time jobs settle before measuring idle memory
        let totalKb = 0;
        const names = (await localNamesFor(context)) as LocalNames;
        for (const host of inventory.hosts) {
          for (const pid of await containerPids(names.netns(host.name))) totalKb += await rssKb(pid);
        }
        const remotes = inventory.hosts.map((h) => new RemoteHost(sshTarget(h)));
        started = Date.now();
        requireAllSucceeded(
          "first fan-out",
          await onEachHost(
            remotes,
            async (r) => {
              await r.connect();
              return r.run("true");
            },
            { concurrency: 16 },
          ),
        );
        const fanoutFirstMs = Date.now() - started;
        started = Date.now();
        requireAllSucceeded("warm fan-out", await onEachHost(remotes, (r) => r.run("true"), { concurrency: 16 }));
        const fanoutWarmMs = Date.now() - started;
        for (const r of remotes) r.dispose();
        started = Date.now();
        await localProvider.down(context, { dryRun: false, keepState: false });
        const figure = {
          nodes,
          upSeconds: Math.round(upSeconds * 10) / 10,
          idleRssMbPerNode: Math.round(totalKb / 1024 / nodes),
          fanoutFirstMs,
          fanoutWarmMs,
          downSeconds: Math.round((Date.now() - started) / 100) / 10,
        };
        log(JSON.stringify(figure));
        figures.push(figure);
      } finally {
        await localProvider.down(context, { dryRun: false, keepState: false }).catch(() => undefined);
      }
    }
    return figures;
  });
}
