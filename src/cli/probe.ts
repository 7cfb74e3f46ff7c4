import { WitnessError } from '../errors.js';
import { checkPrivileges, ensureTracefs, hostFacts } from '../sensor/host.js';
import { loadNative, type ProgramStatus } from '../sensor/native.js';
import { CORE_PROGRAMS } from '../sensor/sensor.js';
import { probeTable, probeTableText } from '../sensor/tls-probe-table.js';
import type { ProbeRow } from '../sensor/tls-uprobes.js';
import { parseArgs } from './args.js';

/**
 * `witness probe`: what this kernel lets the sensor do. Loads and attaches
 * every program for real (loading alone proves nothing: a program can load
 * and then fail to attach), prints the table, detaches. The TLS uprobes are
 * attached only on demand; with --tls-metadata they are attached to the
 * host's OpenSSL files and the TLS table says which binaries can be seen.
 */
export async function run(argv: string[]): Promise<number> {
  const { flags } = parseArgs(argv, { booleans: ['json', 'tls-metadata'] }, 'probe');
  checkPrivileges(); // without them there is nothing to probe: one line, exit 2
  const facts = hostFacts();
  let programs: ProgramStatus[] = [];
  let error: string | null = null;
  let tls: ProbeRow[] | null = null;
  try {
    if (!facts.btf) throw new WitnessError('E_KERNEL', 'no BTF at /sys/kernel/btf/vmlinux');
    ensureTracefs();
    const mod = loadNative();
    const sensor = new mod.Sensor({ onBatch: () => {} });
    programs = sensor.capabilities();
    if (flags['tls-metadata'] === true) tls = probeTable(sensor);
    await sensor.close();
  } catch (err) {
    error = (err as Error).message;
  }
  const attached = programs.filter((p) => p.attached).length;
  // programs for a tracepoint this kernel does not have (their alternative attaches instead)
  const onDemand = programs.filter((p) => p.skipped && /^u(ret)?probe/.test(p.section)).length;
  const skipped = programs.filter((p) => p.skipped).length - onDemand;
  const coreOk = CORE_PROGRAMS.every((n) => programs.some((p) => p.name === n && p.attached));
  const report = { ...hostFacts(), programs, attached, skipped, on_demand: onDemand, total: programs.length, ...(tls ? { tls } : {}), core_ok: coreOk, error };
  if (flags.json) {
    process.stdout.write(`${JSON.stringify(report)}\n`);
  } else {
    const lines = [
      `kernel   ${report.kernel}`,
      `btf      ${report.btf ? 'yes' : 'NO'}`,
      `tracefs  ${report.tracefs ? 'yes' : 'NO'}`,
      `programs ${attached}/${programs.length} attached${skipped ? `, ${skipped} not for this kernel` : ''}${onDemand ? `, ${onDemand} on demand (--tls-metadata)` : ''}${coreOk ? '' : '  (core probes missing: the sensor cannot run)'}`,
      ...(error ? [`error    ${error}`] : []),
      '',
      ...programs.map((p) => `${p.attached ? 'ok  ' : p.skipped ? 'SKIP' : p.loaded ? 'LOAD' : 'FAIL'}  ${p.name.padEnd(22)} ${p.section.padEnd(44)} ${p.reason}`),
      ...(tls ? ['', 'TLS plaintext (--tls-metadata): what can be seen, per file', ...probeTableText(tls)] : []),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  }
  return coreOk && !error ? 0 : 1;
}
