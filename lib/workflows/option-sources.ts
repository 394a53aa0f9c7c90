import { invalid } from "../errors";
import type { Principal } from "../policy/evaluate";

/**
 * Options that come from an outside system (a field with `optionsFrom: "integration:<name>"`),
 * e.g. the failed runs of a job. An integration registers a source by name; the form lists
 * what it returns for the chosen target, and the server checks the submitted value against
 * the same list, so a value the source does not offer is refused.
 */
export type OptionSource = (context: { who: Principal; targetId: string }) => Promise<string[]>;

const sources = new Map<string, OptionSource>();

export function registerOptionSource(name: string, source: OptionSource): void {
  sources.set(name, source);
}

export async function resolveOptions(name: string, context: { who: Principal; targetId: string }): Promise<string[]> {
  const source = sources.get(name);
  if (!source) throw new Error(`No option source "${name}" is registered.`);
  return source(context);
}

/** Server-side check of every integration-backed field of a validated input. */
export async function checkIntegrationOptions(
  fields: { name: string; optionsFrom?: string; label: string }[],
  input: Record<string, unknown>,
  who: Principal,
): Promise<void> {
  const targetId = String(input.targetId ?? "");
  for (const field of fields) {
    if (!field.optionsFrom?.startsWith("integration:")) continue;
    const name = field.optionsFrom.slice("integration:".length);
    let options: string[];
    try {
      options = await resolveOptions(name, { who, targetId });
    } catch (error) {
      throw invalid(`${field.label}: the options could not be loaded (${(error as Error).message}).`, {
        [field.name]: `The options could not be loaded: ${(error as Error).message}`,
      });
    }
    const values = Array.isArray(input[field.name]) ? (input[field.name] as unknown[]) : [input[field.name]];
    const unknown = values.filter((v) => !options.includes(String(v)));
    if (unknown.length > 0)
      throw invalid(`${field.label}: ${unknown.join(", ")} is not one of the offered options.`, { [field.name]: `Choose one of the offered options.` });
  }
}
