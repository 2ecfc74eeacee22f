/**
 * `bootstrap --replace <node>`: a node gets a fresh machine under the same name
 * without the cluster losing its quorum. The node leaves the cluster first
 * (node-removal.ts: servers behind the quorum checks, clients drained), its
 * provider destroys it, and the bootstrap then provisions it anew and runs every
 * stage, which joins it like on the first bootstrap (Consul and Nomad through
 * retry_join; a Vault node through raft retry_join, unsealed from the state).
 * A node that no longer answers can be replaced too: its leave is skipped with
 * a warning and its raft peers are removed through the other servers.
 */
import { existsSync } from "node:fs";
import { InputError, NotImplementedError } from "../errors.ts";
import { loadInventory } from "../inventory/load.ts";
import { confirmWith } from "../providers/confirm.ts";
import type { Provider, ProviderContext } from "../providers/types.ts";
import { openClusterRun } from "../stages/run-context.ts";
import { removeFromCluster } from "./node-removal.ts";
import { describeRemoval, planReplace } from "./removal-plan.ts";

/** Take `name` out of the cluster and have its provider destroy it; one line per thing done. */
export async function replaceNode(context: ProviderContext, provider: Provider, name: string): Promise<string[]> {
  const previous = existsSync(context.state.inventoryCopy) ? await loadInventory(context.state.inventoryCopy) : undefined;
  const plan = planReplace(name, context.config, previous);
  const inventory = previous as NonNullable<typeof previous>;
  if (!provider.removeNodes) throw new NotImplementedError(`Replacing nodes on the ${provider.name} provider`, "issue 14");
  for (const line of describeRemoval(plan.host)) context.reporter.info(line);
  if (!(await confirmWith(context, `Replace ${name}? Its disk is destroyed and a fresh node takes its place.`)))
    throw new InputError(`--replace ${name} was not confirmed: nothing changed.`);
  const step = context.reporter.step(`replace: ${name} leaves the cluster`);
  // the node itself may be the broken one: it need not answer
  const run = await openClusterRun(context, inventory, { tolerateUnreachable: true });
  const done: string[] = [];
  try {
    done.push(...(await removeFromCluster(run, inventory, plan.host)));
  } finally {
    run.close();
  }
  done.push(...(await provider.removeNodes(context, [name])));
  step.done(`left and removed; it is provisioned again next`);
  return done;
}
