import { expect } from "vitest";
import type { z } from "zod";
import { InputError } from "../../scripts/lib/errors.ts";
import { parseYamlText } from "../../scripts/lib/util/validated-yaml.ts";

/** The detail lines of the InputError a YAML text gets; fails the test when it is accepted. */
export function validationProblems(yaml: string, file: string, schema: z.ZodType, what: string): string[] {
  try {
    parseYamlText(yaml, file, schema, what);
  } catch (error) {
    expect(error).toBeInstanceOf(InputError);
    return (error as InputError).details;
  }
  throw new Error(`expected ${what} to be rejected`);
}
