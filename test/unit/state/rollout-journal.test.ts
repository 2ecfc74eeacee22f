/**
 * The rollout journal file (state/rollout-journal.ts): hosts recorded from
 * parallel callbacks all arrive, a host whose files change again is not done
 * any more, the order of what is left follows the plan, and the file (0600)
 * goes once the last agent in it finished.
 */
import { existsSync } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { RolloutJournal } from "../../../scripts/lib/state/rollout-journal.ts";
import { scratchDirs } from "../../helpers/fixtures.ts";

const scratch = scratchDirs();
afterAll(() => scratch.removeAll());

const journalFile = async () => join(await scratch.make("journal"), "rollout.json");

describe("the rollout journal", () => {
  it("keeps every host recorded by parallel callers, in a 0600 file a new reader sees", async () => {
    const file = await journalFile();
    const journal = await RolloutJournal.open(file);
    await Promise.all(["a", "b", "c", "d", "e"].map((h) => journal.pending("consul", [h])));
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const again = await RolloutJournal.open(file);
    expect([...(again.entry("consul")?.pending ?? [])].sort()).toEqual(["a", "b", "c", "d", "e"]);
    expect(JSON.parse(await readFile(file, "utf8"))).toMatchObject({ version: 1 });
  });

  it("lists what is left in the planned order; a host recorded again is no longer done", async () => {
    const file = await journalFile();
    const journal = await RolloutJournal.open(file);
    await journal.pending("nomad", ["s1", "s2", "s3"]);
    await journal.planned("nomad", [["s2"], ["s3"], ["s1"]]);
    await journal.done("nomad", ["s2"]);
    expect((await RolloutJournal.open(file)).left("nomad")).toEqual(["s3", "s1"]);
    await journal.pending("nomad", ["s2"]);
    expect((await RolloutJournal.open(file)).left("nomad")).toEqual(["s2", "s3", "s1"]);
    expect(journal.left("consul")).toEqual([]);
  });

  it("forgets the hosts of a finished rollout, and removes the file with the last agent", async () => {
    const file = await journalFile();
    const journal = await RolloutJournal.open(file);
    await journal.pending("consul", ["s1", "c1"]);
    await journal.pending("vault", ["s1"]);
    await journal.finish("consul", ["s1"]);
    expect((await RolloutJournal.open(file)).entry("consul")?.pending).toEqual(["c1"]);
    await journal.finish("consul", ["c1"]);
    expect((await RolloutJournal.open(file)).entry("consul")).toBeUndefined();
    expect(existsSync(file)).toBe(true);
    await journal.finish("vault", ["s1"]);
    expect(existsSync(file)).toBe(false);
  });
});
