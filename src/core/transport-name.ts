/** The transports a listener can use; metric labels and client options use the same names. */
export const TRANSPORT_NAMES = ['long-poll', 'sse', 'websocket'] as const;

/** One of {@link TRANSPORT_NAMES}. */
export type TransportName = (typeof TRANSPORT_NAMES)[number];
