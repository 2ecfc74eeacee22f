#!/usr/bin/env node
// Runs before every npm script (the "pre" hooks): installs the npm packages
// with `npm ci` when node_modules is missing or older than package-lock.json.
// Plain JavaScript with no dependencies, since nothing is installed yet.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const lockFile = join(root, "package-lock.json");
const marker = join(root, "node_modules", ".hashistack-lock-hash");

const [major, minor] = process.versions.node.split(".").map(Number);
if (major < 20 || (major === 20 && minor < 19)) {
  console.error(`✖ Node.js ${process.versions.node} is too old: hashistack-bootstrap needs Node.js 20.19 or newer.`);
  console.error("  hint: install a current Node.js LTS (https://nodejs.org/) and run the command again.");
  process.exit(2);
}

const wanted = createHash("sha256").update(readFileSync(lockFile)).digest("hex");
const installed = existsSync(marker) ? readFileSync(marker, "utf8").trim() : "";
if (installed !== wanted) {
  console.error("• installing npm packages (npm ci) …");
  const result = spawnSync("npm", ["ci", "--no-audit", "--no-fund", "--loglevel=error"], { cwd: root, stdio: "inherit" });
  if (result.status !== 0) {
    console.error("✖ npm ci failed; see npm's output above.");
    console.error("  hint: check access to the npm registry (npm config get registry) and run the command again.");
    process.exit(result.status ?? 1);
  }
  writeFileSync(marker, `${wanted}\n`);
}
