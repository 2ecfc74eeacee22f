import { mkdir, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createRecordingReporter } from "../../../scripts/lib/cli/output.ts";
import { clusterConfigSchema } from "../../../scripts/lib/config/schema.ts";
import { inventorySchema } from "../../../scripts/lib/inventory/schema.ts";
import { confirmWith } from "../../../scripts/lib/providers/confirm.ts";
import { providerFor } from "../../../scripts/lib/providers/index.ts";
import { localLeftovers, saveInventory } from "../../../scripts/lib/providers/local-state.ts";
import { parseProviderType, providerOptionHelp, providerTypes } from "../../../scripts/lib/providers/registry.ts";
import { staticProvider } from "../../../scripts/lib/providers/static.ts";
import { statePaths } from "../../../scripts/lib/state/paths.ts";
import { loopbackInventory, makeConfig, scratchDirs } from "../../helpers/fixtures.ts";

const scratch = scratchDirs();
afterAll(() => scratch.removeAll());

describe("provider registry", () => {
  it("every registered provider has an implementation named after it, and the schemas accept exactly those", () => {
    for (const type of providerTypes) {
      expect(providerFor(type).name).toBe(type);
      const parsed = clusterConfigSchema.safeParse({
        name: "unit-registry",
        provider: { type, static: { inventory: "i.yaml" } },
      });
      // other settings may need more on some providers; the type itself is always accepted
      expect(parsed.error?.issues.filter((issue) => issue.path.join(".") === "provider.type") ?? []).toEqual([]);
    }
    const bad = clusterConfigSchema.safeParse({ name: "unit-registry", provider: { type: "aws" } });
    expect(bad.success).toBe(false);
    expect(bad.error?.issues[0]).toMatchObject({ path: ["provider", "type"], values: providerTypes });
    const inventory = { ...loopbackInventory([{ name: "a", roles: ["server"], ip: "127.0.0.1" }]), provider: "aws" };
    expect(inventorySchema.safeParse(inventory).success).toBe(false);
  });

  it("--provider is validated and described from the registry", () => {
    expect(parseProviderType("vagrant")).toBe("vagrant");
    expect(() => parseProviderType("aws")).toThrow("--provider must be one of local, vagrant, digitalocean, static, not 'aws'.");
    expect(providerOptionHelp("overrides the config")).toBe(
      "local (default), vagrant, digitalocean, static; overrides the config",
    );
  });
});

describe("confirmations go through the context", () => {
  it("--yes answers, an injected question asks, and without either the answer is a clear refusal", async () => {
    expect(await confirmWith({ yes: true }, "Create?")).toBe(true);
    const asked: string[] = [];
    const no = async (q: string) => {
      asked.push(q);
      return false;
    };
    expect(await confirmWith({ yes: false, confirm: no }, "Create 3 droplets?")).toBe(false);
    expect(asked).toEqual(["Create 3 droplets?"]);
    await expect(confirmWith({}, "Create?")).rejects.toThrow("Confirmation needed, but there is no terminal to ask on.");
  });
});

describe("inventory and state on this machine", () => {
  async function context(name: string) {
    const dir = await scratch.make("local-state");
    process.env.HASHISTACK_INVENTORY_DIR = join(dir, "inventories");
    return { config: makeConfig({ name }), state: statePaths(name, join(dir, "state")), reporter: createRecordingReporter() };
  }
  afterAll(() => {
    delete process.env.HASHISTACK_INVENTORY_DIR;
  });

  it("saves the published inventory and the state copy; leftovers list and remove them, keeping the state with --keep-state", async () => {
    const ctx = await context("unit-leftovers");
    const inventory = loopbackInventory([{ name: "a", roles: ["server"], ip: "127.0.0.1" }]);
    const file = await saveInventory(ctx, inventory);
    expect(file).toBe(join(process.env.HASHISTACK_INVENTORY_DIR as string, "unit-leftovers.yaml"));
    expect(existsSync(ctx.state.inventoryCopy)).toBe(true);

    const kept = localLeftovers(ctx, { keepState: true });
    expect(kept.items).toEqual([`inventory ${file}`]);
    const all = localLeftovers(ctx, { keepState: false });
    expect(all.items).toEqual([`inventory ${file}`, `state ${ctx.state.root}`]);
    await kept.remove();
    expect(existsSync(file as string)).toBe(false);
    expect(existsSync(ctx.state.root)).toBe(true);
    await localLeftovers(ctx, { keepState: false }).remove();
    expect(existsSync(ctx.state.root)).toBe(false);
  });

  it("the static provider never lists or removes the user's inventory file, and keeps the state unless --delete-state", async () => {
    const ctx = await context("unit-static");
    await mkdir(ctx.state.root, { recursive: true });
    const own = join(process.env.HASHISTACK_INVENTORY_DIR as string, "unit-static.yaml");
    await mkdir(join(own, ".."), { recursive: true });
    await writeFile(own, "hosts: []\n");
    expect(await staticProvider.down(ctx, { dryRun: true, keepState: true })).toEqual([]);
    // the hosts keep running Vault: its unseal keys are only in the state
    expect(await staticProvider.down(ctx, { dryRun: false, keepState: false })).toEqual([]);
    expect(existsSync(ctx.state.root)).toBe(true);
    expect(await staticProvider.down(ctx, { dryRun: true, keepState: true, deleteState: true })).toEqual([]);
    expect(await staticProvider.down(ctx, { dryRun: true, keepState: false, deleteState: true })).toEqual([
      `state ${ctx.state.root}`,
    ]);
    expect(await staticProvider.down(ctx, { dryRun: false, keepState: false, deleteState: true })).toEqual([
      `state ${ctx.state.root}`,
    ]);
    expect(existsSync(ctx.state.root)).toBe(false);
    expect(existsSync(own)).toBe(true);
  });
});
