/** Number formatting shared by the scenarios' Markdown reports. */

/** `1,234.5`; `–` for a missing or non-finite value. */
export function fmt(value: number | null | undefined, digits = 1): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '–';
  return value.toLocaleString('en-US', {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

/** `12,345`. */
export function int(value: number): string {
  return value.toLocaleString('en-US');
}

/** KiB as MiB with one decimal; `–` when unknown. */
export function mb(kb: number | undefined): string {
  return kb === undefined ? '–' : fmt(kb / 1024, 1);
}
