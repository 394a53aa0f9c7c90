import { z } from "zod";

/**
 * What to call each object of a configuration file in an error ("`maxDuraton` is not a key
 * of an auto-approve rule"). A registry of its own, so the nouns never leak into the JSON
 * Schema generated from the global one.
 */
export const configNouns = z.registry<{ noun: string }>();
