/** Thrown by a flag parser; the loader prefixes the flag's name. */
export class FlagValueError extends Error {}
