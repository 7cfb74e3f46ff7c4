import type { Envelope } from '../../src/events/envelope.js';

/** A store sink's writing side (StoreSink, WorkerStoreSink). */
interface RowSink { write(env: Envelope, line: string): void; flush(): Promise<void> }

/** Writes `rounds` × `perRound` envelopes made by `make(i)`, flushing after each round (the retention tests' load). */
export async function writeInRounds(sink: RowSink, make: (i: number) => Envelope, rounds = 10, perRound = 1000): Promise<void> {
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < perRound; i++) sink.write(make(round * perRound + i), '');
    await sink.flush();
  }
}
