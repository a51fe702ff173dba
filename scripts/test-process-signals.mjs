// Loaded into every test process by `npm test`. The runner stops a test file that outlives its
// time limit with SIGTERM; by default Node then dies without running its 'exit' handlers, and
// the brokers, nodes and servers the file started (each killed by such a handler) outlive it.
process.once('SIGTERM', () => process.exit(143));
