/**
 * SSH host key pinning. Keys we generated ourselves (local nodes) are pinned
 * before the first connection; other hosts are trusted on first use and a
 * changed key afterwards is refused — never silently accepted.
 */
import { createHash } from "node:crypto";
import { readFileIfExists, writeFileAtomic } from "../util/fs.ts";

export function fingerprint(key: Buffer): string {
  return `SHA256:${createHash("sha256").update(key).digest("base64").replace(/=+$/, "")}`;
}

export class KnownHosts {
  private entries: Record<string, string> | undefined;

  constructor(readonly file: string) {}

  private async load(): Promise<Record<string, string>> {
    this.entries ??= JSON.parse((await readFileIfExists(this.file)) ?? "{}") as Record<string, string>;
    return this.entries;
  }

  async get(address: string): Promise<string | undefined> {
    return (await this.load())[address];
  }

  async pin(address: string, keyFingerprint: string): Promise<void> {
    const entries = await this.load();
    entries[address] = keyFingerprint;
    await writeFileAtomic(this.file, `${JSON.stringify(entries, null, 2)}\n`, 0o600);
  }
}
