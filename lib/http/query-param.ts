/**
 * A page's query parameter as one text. Next.js hands a page an array when a parameter is
 * repeated (?a=1&a=2), and code that expects a string then throws (a 500): the first value is
 * used, as URLSearchParams.get reads it.
 */
export type PageSearch = Record<string, string | string[] | undefined>;

export function queryParam(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
