/**
 * Which hosts a run goes on without. A client that does not answer over SSH is
 * skipped: the run changes every other host and says which it left out. A server
 * or Vault node that does not answer stops the run before anything changes (agent
 * config must not change on part of the servers), with the quorum that is left.
 * A host that answers wrongly (changed host key, refused login) is never skipped.
 */
import { OperationError } from "../errors.ts";
import { hostsWithRole, type Inventory, type InventoryHost } from "../inventory/schema.ts";
import { HostsFailedError, isNoAnswer } from "../remote/errors.ts";
import { onEachHost, requireAllSucceeded } from "../remote/fanout.ts";

export interface ConnectFailure {
  host: string;
  error: Error;
}

export interface ReachabilityPlan {
  /** the hosts the run works on */
  reachable: InventoryHost[];
  /** clients that did not answer: the run goes on without them */
  skipped: InventoryHost[];
  /** hosts that did not answer but stay in the run, which works around them ("tolerate") */
  unreachable: InventoryHost[];
}

/** A server or Vault node: the run cannot go on without it. */
export function isEssential(host: InventoryHost): boolean {
  return host.roles.includes("server") || host.roles.includes("vault");
}

/** The line a run prints for a skipped host. */
export function skippedLine(host: InventoryHost): string {
  return `${host.name} (${host.privateIp}): unreachable over SSH — skipped`;
}

const majority = (n: number) => Math.floor(n / 2) + 1;

/** e.g. "2 of 3 servers reachable: quorum holds; bring server-2 back or replace it". */
export function quorumState(what: string, members: InventoryHost[], down: Set<string>): string | undefined {
  const missing = members.filter((h) => down.has(h.name));
  if (!missing.length) return undefined;
  const names = missing.map((h) => h.name).join(", ");
  const reachable = members.length - missing.length;
  if (members.length === 1) return `${what}: ${names}, the only one, is unreachable: bring it back`;
  const state =
    reachable >= majority(members.length)
      ? `quorum holds; bring ${names} back or replace ${missing.length === 1 ? "it" : "them"}`
      : `quorum is lost (${majority(members.length)} needed); bring ${names} back`;
  return `${reachable} of ${members.length} ${what} reachable: ${state}`;
}

/**
 * Decide from the connection failures: throws for a failure that is not a host
 * being down, or for a server or Vault node that does not answer; otherwise
 * returns the hosts to work on and the clients to skip.
 */
export function planReachability(
  inventory: Inventory,
  failures: ConnectFailure[],
  what = "Connecting over SSH",
): ReachabilityPlan {
  const wrong = failures.filter((f) => !isNoAnswer(f.error));
  if (wrong.length) throw new HostsFailedError(what, wrong, inventory.hosts.length);
  const down = new Set(failures.map((f) => f.host));
  const hosts = inventory.hosts;
  const essential = hosts.filter((h) => down.has(h.name) && isEssential(h));
  if (essential.length) {
    const servers = quorumState("servers", hostsWithRole(inventory, "server"), down);
    const vault = quorumState("Vault nodes", hostsWithRole(inventory, "vault"), down);
    const clients = hosts.filter((h) => down.has(h.name) && !isEssential(h));
    throw new OperationError(
      `${essential.map((h) => `${h.name} (${h.privateIp})`).join(", ")} ${essential.length === 1 ? "is" : "are"} unreachable over SSH: bootstrap changes agent configuration and does not run on part of the servers.`,
      {
        details: [
          ...[servers, vault].filter((line): line is string => Boolean(line)),
          ...failures.filter((f) => essential.some((h) => h.name === f.host)).map((f) => f.error.message),
          ...(clients.length ? [`also unreachable (a client is skipped): ${clients.map((h) => h.name).join(", ")}`] : []),
        ],
        hint: `Bring ${essential.map((h) => h.name).join(", ")} back (the node up, sshd answering) and run bootstrap again; 'npm run status', 'unseal' and 'snapshot' work while it is down.`,
      },
    );
  }
  return { reachable: hosts.filter((h) => !down.has(h.name)), skipped: hosts.filter((h) => down.has(h.name)), unreachable: [] };
}

/**
 * A provider's check that its nodes answer over SSH: the same decision as a run's,
 * so a down client does not stop `bootstrap` there either. Returns the clients
 * that did not answer (the run names and skips them when it connects).
 */
export function requireEssentialHostsAnswered(
  what: string,
  inventory: Inventory,
  outcomes: { host: string; ok: boolean; error?: Error }[],
): InventoryHost[] {
  const failures = outcomes.filter((o) => !o.ok).map((o) => ({ host: o.host, error: o.error as Error }));
  return planReachability(inventory, failures, what).skipped;
}

/** What a run does about hosts that do not answer when it connects. */
export type UnreachablePolicy =
  /** every host must answer (the default; tests and `--stages` runs of the library) */
  | "require-all"
  /** go on with whatever answers (status, unseal, snapshot: they name what does not) */
  | "tolerate"
  /** go on without unreachable clients, refuse unreachable servers and Vault nodes (bootstrap) */
  | "skip-clients";

/**
 * Connect to every host (`connect` is RemoteHost.connect in a run, a fake in unit
 * tests) and decide, by the policy, which hosts the run works on.
 */
export async function connectForRun(
  inventory: Inventory,
  connect: (host: InventoryHost) => Promise<void>,
  options: { concurrency: number; policy: UnreachablePolicy },
): Promise<ReachabilityPlan> {
  const outcomes = await onEachHost(inventory.hosts, connect, { concurrency: options.concurrency });
  if (options.policy === "tolerate") {
    const failed = new Set(outcomes.filter((o) => !o.ok).map((o) => o.host));
    return { reachable: inventory.hosts, skipped: [], unreachable: inventory.hosts.filter((h) => failed.has(h.name)) };
  }
  if (options.policy === "require-all") {
    requireAllSucceeded("Connecting over SSH", outcomes);
    return { reachable: inventory.hosts, skipped: [], unreachable: [] };
  }
  const failures = outcomes.filter((o) => !o.ok).map((o) => ({ host: o.host, error: o.error as Error }));
  return planReachability(inventory, failures);
}
