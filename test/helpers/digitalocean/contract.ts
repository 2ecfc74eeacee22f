/**
 * Checks HTTP exchanges against DigitalOcean's OpenAPI document
 * (test/fixtures/digitalocean/openapi.yaml): the operation must exist, path
 * and query parameters must be declared and well-typed, request bodies must
 * match the schema with no undeclared top-level fields, and every answer must
 * match the schema of its status code. `$ref`s are resolved by Ajv.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Ajv, type ValidateFunction } from "ajv";
import { parse } from "yaml";

export const specFile = fileURLToPath(new URL("../../fixtures/digitalocean/openapi.yaml", import.meta.url));

type Json = Record<string, unknown>;
interface Parameter {
  name: string;
  in: "path" | "query" | "header";
  required?: boolean;
  schema: Json;
}
export interface Operation {
  id: string;
  method: string;
  template: string;
  pointer: string;
  parameters: Parameter[];
  regex: RegExp;
  pathNames: string[];
  op: Json;
}

const escapePointer = (s: string) => s.replaceAll("~", "~0").replaceAll("/", "~1");

export class Contract {
  readonly doc: Json;
  private readonly ajv: Ajv;
  private readonly operations: Operation[] = [];
  private readonly compiled = new Map<string, ValidateFunction>();

  constructor(file = specFile) {
    this.doc = parse(readFileSync(file, "utf8")) as Json;
    // unicodeRegExp off: the document's patterns are ECMA-262 without the u flag (e.g. `\:` in tag names)
    this.ajv = new Ajv({ strict: false, allErrors: true, validateSchema: false, logger: false, unicodeRegExp: false });
    // formats used by the document; an unknown format must not silently pass
    const dateTime = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
    this.ajv.addFormat("date-time", dateTime);
    this.ajv.addFormat("uuid", /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i);
    this.ajv.addFormat("ipv4", /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/);
    this.ajv.addFormat("ipv6", /^[0-9a-f:]+$/i);
    this.ajv.addFormat("uri", /^https?:\/\/\S+$/);
    for (const numeric of ["float", "double", "int32", "int64"])
      this.ajv.addFormat(numeric, { type: "number", validate: () => true });
    this.ajv.addFormat("email", /^\S+@\S+$/);
    this.ajv.addSchema(this.doc, "do");
    const paths = this.doc.paths as Record<string, Record<string, Json>>;
    for (const [template, item] of Object.entries(paths)) {
      for (const [method, op] of Object.entries(item)) {
        if (!["get", "post", "put", "patch", "delete"].includes(method)) continue;
        const pathNames: string[] = [];
        const regex = new RegExp(
          `^${template.replace(/\{([^}]+)\}/g, (_, name: string) => {
            pathNames.push(name);
            return "([^/]+)";
          })}$`,
        );
        this.operations.push({
          id: String(op.operationId),
          method: method.toUpperCase(),
          template,
          pointer: `#/paths/${escapePointer(template)}/${method}`,
          parameters: ((op.parameters as Json[] | undefined) ?? []).map((p) => this.deref(p) as unknown as Parameter),
          regex,
          pathNames,
          op,
        });
      }
    }
  }

  /** Follow a local `$ref` (one level at a time until none is left). */
  deref(node: Json): Json {
    let current = node;
    while (typeof current.$ref === "string") current = this.at(current.$ref);
    return current;
  }

  private at(ref: string): Json {
    let node: unknown = this.doc;
    for (const part of ref.replace(/^#\//, "").split("/")) {
      node = (node as Json)[part.replaceAll("~1", "/").replaceAll("~0", "~")];
      if (node === undefined) throw new Error(`unresolvable $ref ${ref}`);
    }
    return node as Json;
  }

  private validator(pointer: string): ValidateFunction {
    let fn = this.compiled.get(pointer);
    if (!fn) {
      fn = this.ajv.compile({ $ref: `do${pointer}` });
      this.compiled.set(pointer, fn);
    }
    return fn;
  }

  private check(pointer: string, value: unknown, where: string): string[] {
    const fn = this.validator(pointer);
    if (fn(value)) return [];
    return (fn.errors ?? []).slice(0, 8).map((e) => `${where}${e.instancePath} ${e.message} ${JSON.stringify(e.params)}`);
  }

  /** Property names a schema declares at its top level, through allOf/anyOf/oneOf and $refs. */
  private declaredProperties(schema: Json, seen = new Set<Json>()): Set<string> {
    const names = new Set<string>();
    const node = this.deref(schema);
    if (seen.has(node)) return names;
    seen.add(node);
    for (const key of Object.keys((node.properties as Json | undefined) ?? {})) names.add(key);
    for (const combinator of ["allOf", "anyOf", "oneOf"]) {
      for (const part of (node[combinator] as Json[] | undefined) ?? []) {
        for (const key of this.declaredProperties(part, seen)) names.add(key);
      }
    }
    return names;
  }

  find(method: string, path: string): { operation: Operation; params: Record<string, string> } | undefined {
    for (const operation of this.operations) {
      if (operation.method !== method) continue;
      const match = operation.regex.exec(path);
      if (!match) continue;
      // a literal segment (e.g. /v2/droplets/actions) beats a parameter that would also match
      const params = Object.fromEntries(operation.pathNames.map((name, i) => [name, decodeURIComponent(match[i + 1]!)]));
      const better = this.operations.find(
        (o) => o !== operation && o.method === method && o.pathNames.length < operation.pathNames.length && o.regex.test(path),
      );
      if (better) continue;
      return { operation, params };
    }
    return undefined;
  }

  /** Problems with a request; empty when it follows the contract. */
  checkRequest(
    method: string,
    path: string,
    query: URLSearchParams,
    body: unknown,
  ): { problems: string[]; operation?: Operation; params: Record<string, string> } {
    const found = this.find(method, path);
    if (!found) return { problems: [`${method} ${path}: no such operation in the contract`], params: {} };
    const { operation, params } = found;
    const problems: string[] = [];
    const where = `${operation.id} (${method} ${operation.template})`;
    const check = (parameter: Parameter, raw: string) => {
      const schema = this.deref(parameter.schema);
      const type = schema.type;
      const value = type === "integer" || type === "number" ? Number(raw) : type === "boolean" ? raw === "true" : raw;
      if ((type === "integer" && !Number.isInteger(value)) || (type === "number" && Number.isNaN(value))) {
        problems.push(`${where}: ${parameter.in} parameter ${parameter.name}='${raw}' is not a ${type}`);
        return;
      }
      const index = operation.parameters.indexOf(parameter);
      const rawParams = operation.op.parameters as Json[];
      const ref = rawParams[index]!.$ref as string | undefined;
      const pointer = ref ? `${ref}/schema` : `${operation.pointer}/parameters/${index}/schema`;
      problems.push(...this.check(pointer, value, `${where}: ${parameter.in} parameter ${parameter.name}`));
    };
    for (const parameter of operation.parameters.filter((p) => p.in === "path")) {
      const raw = params[parameter.name];
      if (raw === undefined) problems.push(`${where}: path parameter ${parameter.name} missing`);
      else check(parameter, raw);
    }
    for (const [name, raw] of query) {
      const parameter = operation.parameters.find((p) => p.in === "query" && p.name === name);
      if (!parameter) problems.push(`${where}: undeclared query parameter '${name}'`);
      else check(parameter, raw);
    }
    for (const parameter of operation.parameters.filter((p) => p.in === "query" && p.required)) {
      if (!query.has(parameter.name)) problems.push(`${where}: required query parameter ${parameter.name} missing`);
    }
    const requestBody = operation.op.requestBody as Json | undefined;
    if (!requestBody) {
      if (body !== undefined) problems.push(`${where}: this operation takes no request body`);
    } else {
      const content = this.deref(requestBody).content as Record<string, Json> | undefined;
      const json = content?.["application/json"];
      if (body === undefined) {
        if (requestBody.required) problems.push(`${where}: request body required`);
      } else if (!json?.schema) problems.push(`${where}: no JSON request body in the contract`);
      else {
        const pointer = `${operation.pointer}/requestBody/content/application~1json/schema`;
        problems.push(...this.check(pointer, body, `${where}: request body`));
        if (body && typeof body === "object" && !Array.isArray(body)) {
          const declared = this.declaredProperties(json.schema as Json);
          for (const key of Object.keys(body)) {
            if (!declared.has(key)) problems.push(`${where}: request body field '${key}' is not in the contract`);
          }
        }
      }
    }
    return { problems, operation, params };
  }

  /** Problems with an answer to `operation`; empty when it follows the contract. */
  checkResponse(operation: Operation, status: number, body: unknown): string[] {
    const responses = operation.op.responses as Record<string, Json>;
    const code = String(status) in responses ? String(status) : "default" in responses ? "default" : undefined;
    const where = `${operation.id} answer ${status}`;
    if (!code) return [`${where}: status not in the contract`];
    let pointer = `${operation.pointer}/responses/${code}`;
    let response = responses[code]!;
    if (typeof response.$ref === "string") {
      pointer = response.$ref;
      response = this.deref(response);
    }
    const json = (response.content as Record<string, Json> | undefined)?.["application/json"];
    if (!json?.schema) return body === undefined || body === "" ? [] : [`${where}: the contract has no body here`];
    if (body === undefined) return [`${where}: body missing`];
    return this.check(`${pointer}/content/application~1json/schema`, body, where);
  }
}
