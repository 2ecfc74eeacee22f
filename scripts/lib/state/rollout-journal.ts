/**
 * The rollout journal, `rollout.json` (0600) in the cluster's state: the resume
 * point of rolling restarts. New files reach every node before the first agent
 * restarts, so a run that stops in between leaves agents whose files are already
 * current but which still run the old config; a re-run would find nothing changed.
 * Per agent (the systemd unit: consul, nomad, vault, …) the journal keeps the
 * hosts recorded before their files are written, the planned restart order once
 * the files are everywhere, and those restarted and healthy again. A finished
 * rollout leaves nothing behind: the file is removed once no agent is left in it.
 */
import { rm } from "node:fs/promises";
import { z } from "zod";
import { OperationError } from "../errors.ts";
import { readFileIfExists, writeFileAtomic } from "../util/fs.ts";

const entrySchema = z.object({
  /** hosts whose agent restarts before its rollout is over: new files written (or being written) */
  pending: z.array(z.string()),
  /** the planned restart order of the rollout under way: one host per step for servers, batches of clients */
  order: z.array(z.array(z.string())),
  /** restarted and healthy again */
  done: z.array(z.string()),
  /** when the first host was recorded (ISO time) */
  since: z.string(),
});

const journalSchema = z.object({
  version: z.literal(1),
  agents: z.record(z.string(), entrySchema),
});

export type RolloutEntry = z.infer<typeof entrySchema>;
type JournalData = z.infer<typeof journalSchema>;

export class RolloutJournal {
  private writing: Promise<void> = Promise.resolve();

  private constructor(
    readonly file: string,
    private readonly data: JournalData,
  ) {}

  /** The journal at `file` (empty when there is none). */
  static async open(file: string): Promise<RolloutJournal> {
    const text = await readFileIfExists(file);
    if (text === undefined) return new RolloutJournal(file, { version: 1, agents: {} });
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      parsed = error;
    }
    const result = journalSchema.safeParse(parsed);
    if (!result.success) {
      throw new OperationError(`The rollout journal ${file} is not readable.`, {
        details: parsed instanceof Error ? [parsed.message] : result.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`),
        hint: "It names the agents a stopped run did not restart yet. Remove it to restart only agents whose files change (restart any left over by hand).",
      });
    }
    return new RolloutJournal(file, result.data);
  }

  entry(agent: string): RolloutEntry | undefined {
    return this.data.agents[agent];
  }

  /** Hosts of `agent` that a stopped run left: recorded, not restarted yet, in the planned order. */
  left(agent: string): string[] {
    const entry = this.entry(agent);
    if (!entry) return [];
    const ordered = [...entry.order.flat(), ...entry.pending];
    return [...new Set(ordered)].filter((h) => entry.pending.includes(h) && !entry.done.includes(h));
  }

  /** Record hosts whose agent must restart, before their files are written (again: not done any more). */
  pending(agent: string, hosts: string[]): Promise<void> {
    if (!hosts.length) return this.writing;
    const entry = this.ensure(agent);
    for (const host of hosts) {
      if (!entry.pending.includes(host)) entry.pending.push(host);
      entry.done = entry.done.filter((h) => h !== host);
    }
    return this.save();
  }

  /** The planned restart order, once the files are everywhere (its hosts are pending). */
  planned(agent: string, order: string[][]): Promise<void> {
    const entry = this.ensure(agent);
    for (const host of order.flat()) if (!entry.pending.includes(host)) entry.pending.push(host);
    entry.order = order;
    return this.save();
  }

  /** Hosts whose agent runs its new files: restarted and healthy again, or started. */
  done(agent: string, hosts: string[]): Promise<void> {
    const entry = this.entry(agent);
    if (!entry) return this.writing;
    for (const host of hosts) if (entry.pending.includes(host) && !entry.done.includes(host)) entry.done.push(host);
    return this.save();
  }

  /** The rollout of these hosts is over: they leave the journal (the agent, and the file, when none is left). */
  finish(agent: string, hosts: string[]): Promise<void> {
    const entry = this.entry(agent);
    if (!entry) return this.writing;
    const gone = (h: string) => hosts.includes(h);
    entry.pending = entry.pending.filter((h) => !gone(h));
    entry.done = entry.done.filter((h) => !gone(h));
    entry.order = entry.order.map((step) => step.filter((h) => !gone(h))).filter((step) => step.length);
    if (!entry.pending.length) delete this.data.agents[agent];
    return this.save();
  }

  private ensure(agent: string): RolloutEntry {
    this.data.agents[agent] ??= { pending: [], order: [], done: [], since: new Date().toISOString() };
    return this.data.agents[agent];
  }

  /** One write at a time, each with the state as it is then; the last one wins. */
  private save(): Promise<void> {
    const next = this.writing.catch(() => undefined).then(() => this.write());
    this.writing = next;
    return next;
  }

  private async write(): Promise<void> {
    if (!Object.keys(this.data.agents).length) await rm(this.file, { force: true });
    else await writeFileAtomic(this.file, `${JSON.stringify(this.data, null, 2)}\n`, 0o600);
  }
}
