/**
 * The Nomad agent's own log on a node (its systemd journal), for failure
 * reports: the agent logs what the allocation's hooks did (identities, Consul
 * and Vault logins, templates, drivers) where the task events are terse.
 */
import { sh } from "../remote/command.ts";
import type { Remote } from "../remote/remote.ts";

export interface AgentLog {
  lines: string[];
  /** what the lines are, for the report */
  source: string;
}

/** Journal lines scanned for the allocation's ID (a busy agent logs a few hundred lines a minute). */
const scanned = 5000;
const lineWidth = 400;

/**
 * The last `count` lines of the nomad unit's journal that name the allocation,
 * or its last `count` lines when none do (a failure before the allocation was
 * logged, or a journal that rotated).
 */
export async function nomadAgentLog(remote: Remote, allocId: string, count = 30): Promise<AgentLog> {
  const journal = sh`journalctl -u nomad --no-pager -o short-iso -n ${scanned}`;
  const result = await remote.runAsRoot(
    `lines=$(${journal} | ${sh`grep -F -e ${allocId}`} | ${sh`tail -n ${count}`}); ` +
      `if [ -n "$lines" ]; then echo allocation; printf '%s\\n' "$lines"; ` +
      `else echo recent; ${sh`journalctl -u nomad --no-pager -o short-iso -n ${count}`}; fi`,
    { allowFailure: true, timeoutMs: 20_000 },
  );
  const [kind, ...lines] = result.stdout.replace(/\n$/, "").split("\n");
  if (result.code !== 0 || (kind !== "allocation" && kind !== "recent")) {
    const why = result.stderr.trim().split("\n").at(-1) || `exit ${result.code}`;
    return { lines: [], source: `nomad agent log on ${remote.name} could not be read: ${why}` };
  }
  const real = lines
    .filter((l) => l !== "" && !l.startsWith("-- No entries --"))
    .map((l) => (l.length > lineWidth ? `${l.slice(0, lineWidth)} …` : l));
  return {
    lines: real,
    source:
      kind === "allocation"
        ? `nomad agent log on ${remote.name} (last ${real.length} lines naming the allocation)`
        : `nomad agent log on ${remote.name} (last ${real.length} lines; none name the allocation)`,
  };
}
