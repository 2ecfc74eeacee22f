import { InputError } from "../errors.ts";
import type { ProviderContext } from "./types.ts";

/** A confirmation through the context: --yes answers it; without a way to ask, it is refused with a hint. */
export async function confirmWith(context: Pick<ProviderContext, "yes" | "confirm">, question: string): Promise<boolean> {
  if (context.yes) return true;
  if (!context.confirm) {
    throw new InputError("Confirmation needed, but there is no terminal to ask on.", { hint: "Pass --yes to confirm." });
  }
  return context.confirm(question);
}
