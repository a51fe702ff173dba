/** The server's error object (`{"error": {"code", "message"}}`), or null when `text` is not one. */
export function errorFrom(
  text: string,
): { code: string; message: string; pushIds?: readonly string[] } | null {
  try {
    const body: unknown = JSON.parse(text);
    if (typeof body !== 'object' || body === null || !('error' in body)) return null;
    const error: unknown = body.error;
    if (typeof error !== 'object' || error === null) return null;
    const code = 'code' in error && typeof error.code === 'string' ? error.code : 'error';
    const message = 'message' in error && typeof error.message === 'string' ? error.message : '';
    const pushIds =
      'pushIds' in error &&
      Array.isArray(error.pushIds) &&
      error.pushIds.every((id) => typeof id === 'string')
        ? error.pushIds
        : undefined;
    return pushIds === undefined ? { code, message } : { code, message, pushIds };
  } catch {
    return null;
  }
}
