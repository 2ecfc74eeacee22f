import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { $ } from "zx";
import { Ajv } from "ajv";
import { parse, parseAllDocuments } from "yaml";

type Job = {
  stage?: string;
  extends?: string | string[];
  needs?: (string | { job: string })[];
  script?: string[];
  before_script?: string[];
  environment?: { name: string; action?: string };
  rules?: { if?: string; when?: string }[];
  allow_failure?: boolean | { exit_codes: number[] };
};
type Include = { local?: string; project?: string; ref?: string; file?: string; inputs?: Record<string, string> };
type Pipeline = Record<string, unknown> & { stages?: string[]; include?: Include[] };
type Spec = { spec: { inputs: Record<string, { description?: string; default?: string }> } };

const reserved = new Set([
  "default",
  "include",
  "stages",
  "variables",
  "workflow",
  "image",
  "services",
  "cache",
  "before_script",
  "after_script",
]);
const load = (file: string) => parse(readFileSync(file, "utf8"), { uniqueKeys: true }) as Pipeline;
const jobsOf = (p: Pipeline) => Object.entries(p).filter(([k]) => !reserved.has(k)) as [string, Job][];
const list = <T>(v: T | T[] | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/** every YAML document of a file: a template with inputs has a `spec:` header document before its content */
const documents = (file: string) =>
  parseAllDocuments(readFileSync(file, "utf8"), { uniqueKeys: true }).map((d) => d.toJS() as Record<string, unknown>);
const templateFile = "ci/gitlab/hashistack-deploy.gitlab-ci.yml";
const [templateSpec, template] = documents(templateFile) as [Spec, Pipeline];
const example = load("ci/gitlab/example.gitlab-ci.yml");
const consumer = load("ci/gitlab/consumer.gitlab-ci.yml");
const all = new Map([...jobsOf(template), ...jobsOf(example)]);

/** GitLab's own JSON schema of .gitlab-ci.yml (test/fixtures/gitlab/README.md) */
const gitlabSchema = new Ajv({ strict: false, allErrors: true, validateFormats: false }).compile(
  JSON.parse(readFileSync("test/fixtures/gitlab/ci.json", "utf8")) as object,
);
const schemaErrors = (document: unknown) =>
  gitlabSchema(document) ? [] : (gitlabSchema.errors ?? []).map((e) => `${e.instancePath} ${e.message}`);

/** The job with its `extends` chain applied (shallow, as GitLab merges top-level keys). */
function resolved(name: string): Job {
  const job = all.get(name);
  if (!job) throw new Error(`no job or template ${name}`);
  return Object.assign({}, ...list(job.extends).map(resolved), job) as Job;
}

describe("GitLab CI template", () => {
  it("the template defines only hidden jobs, and the example includes it", () => {
    expect(jobsOf(template).map(([k]) => k)).toEqual([
      ".hashistack-base",
      ".hashistack-validate",
      ".hashistack-plan",
      ".hashistack-deploy",
    ]);
    expect(example.include?.map((i) => i.local)).toEqual([templateFile]);
    expect(example.stages).toEqual(["validate", "plan", "deploy"]);
  });

  it("every job uses a defined stage, defined templates and existing needs, and has a script", () => {
    for (const [name, job] of jobsOf(example)) {
      expect(example.stages, name).toContain(job.stage);
      for (const parent of list(job.extends)) expect(all.has(parent), `${name} extends ${parent}`).toBe(true);
      for (const need of list(job.needs)) {
        const needed = typeof need === "string" ? need : need.job;
        expect(all.has(needed) && !needed.startsWith("."), `${name} needs ${needed}`).toBe(true);
        const order = example.stages ?? [];
        expect(order.indexOf(all.get(needed)?.stage ?? ""), `${name} needs a later job`).toBeLessThanOrEqual(
          order.indexOf(job.stage ?? ""),
        );
      }
      expect(resolved(name).script?.length, name).toBeGreaterThan(0);
    }
    for (const [name, job] of jobsOf(template)) for (const parent of list(job.extends)) expect(all.has(parent), name).toBe(true);
  });

  it("prod deploys only by hand, on the protected default branch, into the prod environment", () => {
    const prod = resolved("deploy-prod");
    expect(prod.environment?.name).toBe("prod");
    expect(prod.rules).toHaveLength(1);
    expect(prod.rules?.[0]?.when).toBe("manual");
    expect(prod.rules?.[0]?.if).toContain("$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH");
    expect(prod.rules?.[0]?.if).toContain('$CI_COMMIT_REF_PROTECTED == "true"');
    expect(prod.allow_failure).toBe(false);
    // the plan stage tolerates exactly "changes pending"
    expect(resolved("plan-prod").allow_failure).toEqual({ exit_codes: [5] });
  });

  it("the shell in every job parses, and it only passes flags that deploy knows", async () => {
    const help = (await $({ quiet: true })`npx --no-install tsx scripts/deploy.ts --help`).stdout;
    for (const name of [".hashistack-validate", ".hashistack-plan", ".hashistack-deploy"]) {
      const job = resolved(name);
      const shell = [...(job.before_script ?? []), ...(job.script ?? [])].join("\n");
      expect(() => execFileSync("sh", ["-n"], { input: shell }), name).not.toThrow();
      for (const flag of shell.matchAll(/hashistack_deploy[^\n]*/g)) {
        for (const option of flag[0].matchAll(/\s(--[a-z-]+)/g)) expect(help, `${name}: ${option[1]}`).toContain(`${option[1]} `);
      }
    }
  });

  it("the template, the in-repository example and the consumer example are valid GitLab CI by GitLab's schema", () => {
    expect(schemaErrors(templateSpec)).toEqual([]);
    expect(schemaErrors(template)).toEqual([]);
    expect(schemaErrors(example)).toEqual([]);
    expect(schemaErrors(consumer)).toEqual([]);
    // the check can fail: a misspelt keyword and a wrong `when` are refused
    expect(schemaErrors({ ...consumer, "deploy-dev": { script: ["x"], when: "sometimes" } })).not.toEqual([]);
    expect(schemaErrors({ include: [{ project: "g/p", reff: "v1", file: templateFile }] })).not.toEqual([]);
  });

  it("the consumer includes the template by project and passes the include's own project and ref as the inputs", () => {
    expect(consumer.include).toHaveLength(1);
    const include = consumer.include?.[0] ?? {};
    expect(include.file).toBe(templateFile);
    expect(include.inputs).toEqual({ "tool-project": include.project, "tool-ref": include.ref });
    // one ref, written once: the inputs are YAML aliases of the include's values
    const text = readFileSync("ci/gitlab/consumer.gitlab-ci.yml", "utf8");
    expect(text).toMatch(/ref: &hashistack-ref \S+/);
    expect(text).toContain("tool-ref: *hashistack-ref");
    expect(text).toContain("tool-project: *hashistack-project");
    // the template asks for exactly these inputs, without defaults that could drift
    expect(Object.keys(templateSpec.spec.inputs).sort()).toEqual(["tool-project", "tool-ref"]);
    for (const input of Object.values(templateSpec.spec.inputs)) expect(input.default).toBeUndefined();
    // and the consumer's jobs are the in-repository example's
    expect(jobsOf(consumer)).toEqual(jobsOf(example));
    expect(consumer.stages).toEqual(example.stages);
    expect(consumer.variables).toEqual(example.variables);
  });

  it("the tool is found by its own marker, never by a path a consumer may have", () => {
    expect(readFileSync(".hashistack-tool", "utf8")).toBe("hashistack-bootstrap\n");
    const shell = (resolved(".hashistack-base").before_script ?? []).join("\n");
    expect(shell).toContain('"$CI_PROJECT_DIR/.hashistack-tool"');
    expect(shell).not.toMatch(/CI_PROJECT_DIR\/scripts/);
  });
});
