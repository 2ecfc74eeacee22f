import { stdin, stdout } from "node:process";
import { createInterface } from "node:readline/promises";
import { InputError } from "../errors.ts";

/** Ask before destroying anything; without a terminal, only --yes can confirm. */
export async function confirm(question: string, yes: boolean): Promise<boolean> {
  if (yes) return true;
  if (!stdin.isTTY) {
    throw new InputError("Confirmation needed, but there is no terminal to ask on.", { hint: "Pass --yes to confirm." });
  }
  const rl = createInterface({ input: stdin, output: stdout });
  try {
    return /^y(es)?$/i.test((await rl.question(`${question} [y/N] `)).trim());
  } finally {
    rl.close();
  }
}
