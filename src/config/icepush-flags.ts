import { boolean, flag, integer } from './flag-spec.js';

/** The flags of ICEpush compatibility (docs/icepush.md), part of `FLAGS`. */
export const ICEPUSH_FLAGS = {
  icepush: flag({
    name: 'icepush',
    help: "also speak ICEpush 4.x's browser protocol: any path ending in listen.icepush, create-push-id.icepush, add-group-member.icepush, remove-group-member.icepush or notify.icepush (docs/icepush.md)",
    defaultText: 'off',
    defaultValue: () => false,
    parse: boolean,
    boolean: true,
  }),
  icepushOpenApi: flag({
    name: 'icepush-open-api',
    help: 'serve add-group-member.icepush, remove-group-member.icepush and notify.icepush without an API key, as the original did (trusted networks, during a migration)',
    defaultText: 'off',
    defaultValue: () => false,
    parse: boolean,
    boolean: true,
  }),
  icepushHeartbeatSeconds: flag({
    name: 'icepush-heartbeat-seconds',
    arg: 'S',
    help: "ICEpush's heartbeatTimeout: a listen.icepush is held about this long (the browser's own ice.push.heartbeat, clamped to a third and three times this); another value than 15 is sent to pages that ask for their configuration",
    defaultText: '15',
    defaultValue: () => 15,
    parse: integer(1, 300),
  }),
  icepushStormBackoffMs: flag({
    name: 'icepush-storm-backoff-ms',
    arg: 'MS',
    help: 'a browser in a push storm (more than 25 listen.icepush less than 275 ms apart) is told to back off this long; 0: its connection is closed ("push storm occurred"), as the original does by default',
    defaultText: '0',
    defaultValue: () => 0,
    parse: integer(0, 3_600_000),
  }),
} as const;
