/**
 * The GitLab template's tool checkout, run with the real sh and git: the block of
 * `.hashistack-base`'s before_script that finds or fetches the tool, against bare
 * repositories served at a `file://` "GitLab instance" (CI_SERVER_URL). What it cannot
 * show: the job token's HTTP authentication, which needs a GitLab server.
 */
import { readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { $ } from "zx";
import { parseAllDocuments } from "yaml";
import { tempDir } from "../../helpers/fixtures.ts";

type Job = { before_script?: string[] };
const [, template] = parseAllDocuments(readFileSync("ci/gitlab/hashistack-deploy.gitlab-ci.yml", "utf8")).map(
  (d) => d.toJS() as Record<string, Job>,
);
/** the before_script step that sets HASHISTACK_DIR */
const checkout = template?.[".hashistack-base"]?.before_script?.find((s) => s.includes("HASHISTACK_DIR=")) ?? "";

let dir: Awaited<ReturnType<typeof tempDir>>;
let server = "";
let taggedCommit = "";
let headCommit = "";

async function git(cwd: string, ...args: string[]) {
  return (await $({ cwd, quiet: true })`git -c user.name=test -c user.email=test@example.invalid ${args}`).stdout.trim();
}

/** a bare repository `<server>/<project>.git` with the given files committed, tagged v1 */
async function publish(project: string, files: Record<string, string>): Promise<string> {
  const work = join(dir.path, "work", project);
  await mkdir(work, { recursive: true });
  await git(work, "init", "--quiet", "--initial-branch=main");
  for (const [name, content] of Object.entries(files)) {
    await mkdir(join(work, name, ".."), { recursive: true });
    await writeFile(join(work, name), content);
  }
  await git(work, "add", ".");
  await git(work, "commit", "--quiet", "-m", "v1");
  await git(work, "tag", "v1");
  const bare = join(dir.path, "server", `${project}.git`);
  await git(dir.path, "clone", "--quiet", "--bare", work, bare);
  // GitLab serves any reachable commit by its hash
  await git(bare, "config", "uploadpack.allowReachableSHA1InWant", "true");
  return work;
}

/** run the checkout step in sh with a CI environment; HASHISTACK_DIR and what it holds */
async function runCheckout(env: Record<string, string>) {
  const result = await $({
    quiet: true,
    nothrow: true,
    env: { PATH: process.env.PATH ?? "", HOME: dir.path, TMPDIR: join(dir.path, "tmp"), ...env },
    input: `set -e\n${checkout}\necho "HASHISTACK_DIR=$HASHISTACK_DIR"\n`,
  })`sh`;
  const found = /HASHISTACK_DIR=(.*)/.exec(result.stdout)?.[1] ?? "";
  return { code: result.exitCode, stdout: result.stdout, stderr: result.stderr, dir: found };
}

beforeAll(async () => {
  dir = await tempDir("gitlab-template");
  await mkdir(join(dir.path, "tmp"));
  server = `file://${join(dir.path, "server")}`;
  const tool = await publish("my-group/hashistack-bootstrap", {
    ".hashistack-tool": "hashistack-bootstrap\n",
    "scripts/deploy.ts": "// the tool\n",
  });
  taggedCommit = await git(tool, "rev-parse", "HEAD");
  await writeFile(join(tool, "NEXT"), "later\n");
  await git(tool, "add", ".");
  await git(tool, "commit", "--quiet", "-m", "after v1");
  headCommit = await git(tool, "rev-parse", "HEAD");
  await git(tool, "push", "--quiet", join(dir.path, "server", "my-group/hashistack-bootstrap.git"), "main");
  await publish("someone/else", { "scripts/deploy.ts": "// not the tool\n" });
});

afterAll(async () => {
  await dir?.remove();
});

describe("GitLab template: the tool checkout", () => {
  it("a consumer with its own scripts/deploy.ts still gets the tool, at the include's ref (a tag)", async () => {
    const consumer = join(dir.path, "consumer");
    await mkdir(join(consumer, "scripts"), { recursive: true });
    await writeFile(join(consumer, "scripts", "deploy.ts"), "// the consumer's own script\n");
    const run = await runCheckout({
      CI_PROJECT_DIR: consumer,
      CI_SERVER_URL: server,
      CI_JOB_TOKEN: "job-token-not-shown",
      HASHISTACK_TOOL_PROJECT: "my-group/hashistack-bootstrap",
      HASHISTACK_TOOL_REF: "v1",
    });
    expect(run.code, run.stderr).toBe(0);
    expect(run.dir).not.toBe(consumer);
    expect(readFileSync(join(run.dir, "scripts", "deploy.ts"), "utf8")).toBe("// the tool\n");
    expect(await git(run.dir, "rev-parse", "HEAD")).toBe(taggedCommit);
    expect(run.stdout).toContain("hashistack-bootstrap: my-group/hashistack-bootstrap at v1");
    expect(`${run.stdout}${run.stderr}`).not.toContain("job-token-not-shown");
    // the token helper is given on the command line only: nothing of it stays in the checkout
    expect(readFileSync(join(run.dir, ".git", "config"), "utf8")).not.toContain("credential");
  });

  it("takes a branch or a commit as the ref", async () => {
    const consumer = join(dir.path, "consumer-2");
    await mkdir(consumer, { recursive: true });
    const env = { CI_PROJECT_DIR: consumer, CI_SERVER_URL: server, HASHISTACK_TOOL_PROJECT: "my-group/hashistack-bootstrap" };
    const branch = await runCheckout({ ...env, HASHISTACK_TOOL_REF: "main" });
    expect(branch.code, branch.stderr).toBe(0);
    expect(await git(branch.dir, "rev-parse", "HEAD")).toBe(headCommit);
    const commit = await runCheckout({ ...env, HASHISTACK_TOOL_REF: taggedCommit });
    expect(commit.code, commit.stderr).toBe(0);
    expect(await git(commit.dir, "rev-parse", "HEAD")).toBe(taggedCommit);
  });

  it("in the tool's own repository (its marker) nothing is fetched", async () => {
    const own = join(dir.path, "own");
    await mkdir(own, { recursive: true });
    await writeFile(join(own, ".hashistack-tool"), "hashistack-bootstrap\n");
    const run = await runCheckout({ CI_PROJECT_DIR: own, CI_SERVER_URL: "file:///nonexistent", HASHISTACK_TOOL_REF: "v1" });
    expect(run.code, run.stderr).toBe(0);
    expect(run.dir).toBe(own);
  });

  it("a project that is not the tool is refused, naming the inputs to check", async () => {
    const consumer = join(dir.path, "consumer-3");
    await mkdir(consumer, { recursive: true });
    const run = await runCheckout({
      CI_PROJECT_DIR: consumer,
      CI_SERVER_URL: server,
      HASHISTACK_TOOL_PROJECT: "someone/else",
      HASHISTACK_TOOL_REF: "v1",
    });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(
      "someone/else at v1 is not hashistack-bootstrap (no .hashistack-tool marker): check the include's inputs tool-project and tool-ref.",
    );
  });
});
