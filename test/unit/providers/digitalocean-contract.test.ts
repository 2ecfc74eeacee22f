/**
 * The contract checker the DigitalOcean simulator relies on must itself fail on
 * bad exchanges, or the provider tests would prove nothing.
 */
import { describe, expect, it } from "vitest";
import { Contract } from "../../helpers/digitalocean/contract.ts";

const contract = new Contract();
const q = (s = "") => new URLSearchParams(s);

describe("OpenAPI contract checker", () => {
  it("accepts a well-formed request", () => {
    expect(contract.checkRequest("GET", "/v2/droplets", q("tag_name=x&per_page=200&page=2"), undefined).problems).toEqual([]);
    const body = { name: "a", region: "lon1", ip_range: "10.0.0.0/24", description: "d" };
    expect(contract.checkRequest("POST", "/v2/vpcs", q(), body).problems).toEqual([]);
  });

  it("rejects unknown operations, undeclared or mistyped parameters", () => {
    expect(contract.checkRequest("GET", "/v2/nothing", q(), undefined).problems).toEqual([
      "GET /v2/nothing: no such operation in the contract",
    ]);
    expect(contract.checkRequest("PATCH", "/v2/droplets", q(), {}).problems[0]).toMatch(/no such operation/);
    const problems = contract.checkRequest("GET", "/v2/droplets", q("bogus=1&per_page=abc"), undefined).problems;
    expect(problems).toEqual([
      expect.stringMatching(/undeclared query parameter 'bogus'/),
      expect.stringMatching(/per_page='abc' is not a integer/),
    ]);
    expect(contract.checkRequest("GET", "/v2/droplets", q("per_page=500"), undefined).problems[0]).toMatch(/per_page/);
    expect(contract.checkRequest("DELETE", "/v2/droplets/abc", q(), undefined).problems[0]).toMatch(/droplet_id='abc'/);
  });

  it("rejects bodies with missing required fields, wrong types or undeclared fields", () => {
    const problems = contract.checkRequest("POST", "/v2/vpcs", q(), { name: 3, bogus: 1 }).problems;
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/request body\/name must be string/),
        expect.stringMatching(/must have required property 'region'/),
        expect.stringMatching(/field 'bogus' is not in the contract/),
      ]),
    );
    expect(contract.checkRequest("POST", "/v2/droplets", q(), { name: "x", size: "s" }).problems.join()).toMatch(/image/);
    expect(contract.checkRequest("GET", "/v2/account", q(), { x: 1 }).problems[0]).toMatch(/takes no request body/);
  });

  it("checks answers against the schema of their status code", () => {
    const { operation } = contract.checkRequest("GET", "/v2/account", q(), undefined);
    expect(contract.checkResponse(operation!, 401, { id: "unauthorized", message: "x" })).toEqual([]);
    expect(contract.checkResponse(operation!, 401, { id: 3 }).join()).toMatch(/message/);
    expect(contract.checkResponse(operation!, 200, { account: {} }).join()).toMatch(/droplet_limit/);
    const list = contract.checkRequest("GET", "/v2/volumes", q(), undefined).operation!;
    expect(contract.checkResponse(list, 200, { links: {}, meta: { total: 0 } }).join()).toMatch(/volumes/);
    expect(contract.checkResponse(list, 200, { volumes: [], links: {}, meta: { total: 0 } })).toEqual([]);
    const del = contract.checkRequest("DELETE", "/v2/vpcs/abc", q(), undefined).operation!;
    expect(contract.checkResponse(del, 204, { unexpected: true })[0]).toMatch(/no body here/);
  });
});
