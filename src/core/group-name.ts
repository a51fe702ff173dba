declare const groupNameBrand: unique symbol;
/**
 * A group name: 1–200 characters of `[A-Za-z0-9._:~-]` (safe in URL paths without escaping),
 * except `.` and `..`, which a URL path resolves away.
 */
export type GroupName = string & { readonly [groupNameBrand]: true };

export const GROUP_NAME_PATTERN = /^[A-Za-z0-9._:~-]{1,200}$/;

export function isGroupName(value: unknown): value is GroupName {
  return (
    typeof value === 'string' && GROUP_NAME_PATTERN.test(value) && value !== '.' && value !== '..'
  );
}
