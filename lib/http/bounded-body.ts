import { MAX_BODY_BYTES } from "./plain";

/**
 * A web request's body as text, read only up to a limit: a declared Content-Length past it is
 * refused before reading, and a body streamed without one stops being read at the limit, so a
 * caller that is not yet authenticated (a signed webhook, say) cannot make the process buffer
 * an unbounded body before its signature is checked. Null: the body is larger than the limit.
 */
export async function textWithin(request: Request, limit = MAX_BODY_BYTES): Promise<string | null> {
  const declared = request.headers.get("content-length");
  if (declared !== null && Number(declared) > limit) return null;
  if (!request.body) return "";
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel();
      return null;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString("utf8");
}
