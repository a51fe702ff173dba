import { EpushError } from '../../core/errors.js';

/** How long any one backplane call may take before the API answers 503. */
export const CALL_TIMEOUT_MS = 5000;

/**
 * Runs one call to the vendor, bounded in time. Anything it throws that is not already an
 * EpushError (a lost connection, a timeout, a refused command) becomes `backplane_unavailable`
 * (503 with Retry-After): the client tries again, and never gets a late 202.
 */
export async function backplaneCall<T>(
  vendor: string,
  call: () => Promise<T>,
  timeoutMs = CALL_TIMEOUT_MS,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      call(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          reject(new Error(`no answer within ${timeoutMs} ms`));
        }, timeoutMs);
      }),
    ]);
  } catch (error) {
    if (error instanceof EpushError) throw error;
    throw unavailable(vendor, error instanceof Error ? error.message : String(error));
  } finally {
    clearTimeout(timer);
  }
}

export function unavailable(vendor: string, reason: string): EpushError {
  return new EpushError(
    'backplane_unavailable',
    `${vendor} is unreachable (${reason}); try again shortly.`,
    { 'retry-after': '1' },
  );
}
