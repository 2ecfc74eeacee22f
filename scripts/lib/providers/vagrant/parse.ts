/**
 * Parsers for Vagrant's output: `vagrant ssh-config` (an OpenSSH config
 * snippet per machine) and `--machine-readable` lines
 * (`timestamp,target,type,data…` with commas in data written as
 * `%!(VAGRANT_COMMA)` and newlines as a literal `\n`).
 */
import { OperationError } from "../../errors.ts";

export interface MachineReadableLine {
  timestamp: number;
  target: string;
  type: string;
  data: string[];
}

/** Undo Vagrant's escaping of one data field (lib/vagrant/ui.rb, MachineReadable#machine). */
export function unescapeField(field: string): string {
  return field.replaceAll("%!(VAGRANT_COMMA)", ",").replaceAll("\\n", "\n").replaceAll("\\r", "\r");
}

export function parseMachineReadable(text: string): MachineReadableLine[] {
  const lines: MachineReadableLine[] = [];
  for (const raw of text.split(/\r?\n/)) {
    if (!raw.trim()) continue;
    const [timestamp, target, type, ...data] = raw.split(",");
    // Vagrant prints plugin warnings and Ruby deprecation notes outside the format; skip them
    if (!timestamp || !/^\d+$/.test(timestamp) || type === undefined) continue;
    lines.push({ timestamp: Number(timestamp), target: target ?? "", type, data: data.map(unescapeField) });
  }
  return lines;
}

export interface MachineState {
  name: string;
  /** e.g. running, poweroff, saved, aborted (VirtualBox); running, shutoff, paused (libvirt); not_created */
  state: string;
  provider?: string;
  description?: string;
}

/** Machine states from `vagrant status --machine-readable`. */
export function parseStatus(text: string): MachineState[] {
  const machines = new Map<string, MachineState>();
  const lines = parseMachineReadable(text);
  const failure = lines.find((l) => l.type === "error-exit");
  if (failure) {
    throw new OperationError(`vagrant status failed: ${failure.data.slice(1).join(", ") || failure.data[0]}`, {
      hint: "Run 'vagrant status' in vagrant/ with the same environment to see the full message.",
    });
  }
  for (const line of lines) {
    if (!line.target) continue;
    const machine = machines.get(line.target) ?? { name: line.target, state: "unknown" };
    if (line.type === "state") machine.state = line.data[0] ?? "unknown";
    else if (line.type === "provider-name") machine.provider = line.data[0];
    else if (line.type === "metadata" && line.data[0] === "provider") machine.provider ??= line.data[1];
    else if (line.type === "state-human-long") machine.description = line.data[0];
    machines.set(line.target, machine);
  }
  return [...machines.values()];
}

export interface SshConfigEntry {
  host: string;
  hostName: string;
  user: string;
  port: number;
  identityFile?: string;
}

/** `vagrant ssh-config` for all machines: one `Host` block each. */
export function parseSshConfig(text: string): SshConfigEntry[] {
  const entries: SshConfigEntry[] = [];
  let current: Partial<SshConfigEntry> & { host?: string } = {};
  const finish = () => {
    if (!current.host) return;
    if (!current.hostName || !current.user || current.port === undefined) {
      throw new OperationError(`vagrant ssh-config has no HostName, User or Port for machine '${current.host}'.`, {
        hint: "Is the machine running? Check 'vagrant status'.",
      });
    }
    entries.push(current as SshConfigEntry);
  };
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const match = /^(\S+)\s+(.*)$/.exec(line);
    if (!match) continue;
    const key = match[1]!.toLowerCase();
    // values may be quoted when a path has spaces
    const value = match[2]!.trim().replace(/^"(.*)"$/, "$1");
    if (key === "host") {
      finish();
      current = { host: value };
    } else if (key === "hostname") current.hostName = value;
    else if (key === "user") current.user = value;
    else if (key === "port") current.port = Number(value);
    // several IdentityFile lines: the first that exists is used by ssh; keep the first
    else if (key === "identityfile") current.identityFile ??= value;
  }
  finish();
  return entries;
}
