/**
 * Text from outside (a broker, a store) read as a JSON object: null when it is not JSON or not an
 * object. The caller still validates every field it reads; nothing is trusted by a cast.
 */
export function parseJsonObject(text: string): Record<string, unknown> | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : null;
}
