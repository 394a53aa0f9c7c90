/** What an incoming X-Request-Id may be to be kept: a proxy's id, never a place to smuggle text into logs. Edge-safe (middleware.ts). */
export const REQUEST_ID_PATTERN = /^[A-Za-z0-9._:=-]{8,128}$/;
