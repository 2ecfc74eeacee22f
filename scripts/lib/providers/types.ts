/**
 * The contract every provider keeps: `up` creates or finds the nodes and
 * returns the inventory, `status` reports them, `down` removes what `up`
 * created. All three are idempotent.
 */
import type { Reporter } from "../cli/output.ts";
import type { ClusterConfig } from "../config/schema.ts";
import type { Inventory } from "../inventory/schema.ts";
import type { StatePaths } from "../state/paths.ts";

export interface ProviderContext {
  config: ClusterConfig;
  state: StatePaths;
  reporter: Reporter;
  /** --yes: confirmations (e.g. creating billed cloud resources) are answered up front */
  yes?: boolean;
  /**
   * Asks the operator a yes/no question (the CLI asks on its terminal). Providers
   * call it through `confirmWith`, never a terminal themselves; without it, only
   * `yes` confirms.
   */
  confirm?: (question: string) => Promise<boolean>;
}

export interface NodeStatus {
  name: string;
  address: string;
  state: "running" | "stopped" | "missing" | "unknown";
  detail?: string;
}

export interface ProviderStatus {
  provider: string;
  nodes: NodeStatus[];
  /** resources the provider owns besides nodes (bridges, VPCs, firewalls …) */
  resources: string[];
}

export interface DownOptions {
  dryRun: boolean;
  keepState: boolean;
  /** the static provider keeps the state unless this is set (its hosts keep running Vault) */
  deleteState?: boolean;
}

export interface Provider {
  readonly name: string;
  up(context: ProviderContext): Promise<Inventory>;
  status(context: ProviderContext): Promise<ProviderStatus>;
  /** returns what was (or, with dryRun, would be) removed */
  down(context: ProviderContext, options: DownOptions): Promise<string[]>;
  /** remove these nodes (scale in) and return what was removed; providers without it cannot scale in */
  removeNodes?(context: ProviderContext, hostNames: string[]): Promise<string[]>;
}
