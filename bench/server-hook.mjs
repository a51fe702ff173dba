// Preloaded into the epush server by bench/run.ts (node --expose-gc --import this file), so the
// bench can look inside the server without touching src/. Nothing runs until SIGUSR2 arrives;
// then it reads a command from $BENCH_CONTROL_FILE and writes its answer, with a sequence
// number, to $BENCH_STATS_FILE (via a temp name and rename):
//   {"cmd":"heap"}        process.memoryUsage() before and after a full gc()
//   {"cmd":"prof-start"}  start the V8 CPU profiler (node:inspector, in-process)
//   {"cmd":"prof-stop","file":"…"}  stop it and write the .cpuprofile to "file"
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { getHeapStatistics } from 'node:v8';

const out = process.env.BENCH_STATS_FILE;
const control = process.env.BENCH_CONTROL_FILE;
if (out && control) {
  let seq = 0;
  let session = null;
  const answer = (body) => {
    writeFileSync(`${out}.tmp`, JSON.stringify({ seq, ...body }));
    renameSync(`${out}.tmp`, out);
  };
  process.on('SIGUSR2', () => {
    seq += 1;
    let command = { cmd: 'heap' };
    try {
      command = JSON.parse(readFileSync(control, 'utf8'));
    } catch {
      // no control file: heap
    }
    if (command.cmd === 'prof-start') {
      session ??= new Session();
      session.connect();
      session.post('Profiler.enable', () => {
        session.post('Profiler.setSamplingInterval', { interval: 1000 }, () => {
          session.post('Profiler.start', (error) => answer({ ok: !error }));
        });
      });
    } else if (command.cmd === 'prof-stop' && session) {
      session.post('Profiler.stop', (error, result) => {
        if (!error) writeFileSync(command.file, JSON.stringify(result.profile));
        session.disconnect();
        answer({ ok: !error, file: command.file });
      });
    } else {
      const before = process.memoryUsage();
      if (typeof globalThis.gc === 'function') globalThis.gc();
      const after = process.memoryUsage();
      answer({ before, after, gc: typeof globalThis.gc === 'function', heap: getHeapStatistics() });
    }
  });
}
