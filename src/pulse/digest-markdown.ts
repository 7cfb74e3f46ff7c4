import { msToRfc3339 } from './events.js';
import { describeEvent, type DigestModel } from './digest-model.js';

/**
 * Markdown digest. Names come from agents (DNS names, SNI) and are hostile
 * input: every one is escaped so it renders as text, never as a link,
 * image or table break.
 */
export function mdEscape(s: string): string {
  return s.replace(/[\u0000-\u001f\u007f]/g, ' ').replace(/[\\`*_{}[\]()<>#+!|~-]/g, (c) => `\\${c}`);
}

function hhmm(ms: number): string {
  return new Date(ms).toISOString().slice(11, 16);
}

const STATUS_GLYPH = { ok: '', gap: 'G', degraded: 'd', none: '·' } as const;

export function renderMarkdown(m: DigestModel): string {
  const out: string[] = [];
  out.push(`# Pulse digest — ${msToRfc3339(m.windowStart).slice(0, 16)}Z to ${hhmm(m.windowEnd)}Z`, '');
  out.push(`Window ${msToRfc3339(m.windowStart)} – ${msToRfc3339(m.windowEnd)}; rhythm over the ${m.agents[0]?.strip.length ?? 0} windows since ${msToRfc3339(m.spanStart)}.`, '');
  out.push('Legend: numbers are external flows per window; `G` = observer gap (sensor not watching), `d` = degraded observation, `!` = quiet alert active, `·` = agent not tracked.', '');
  if (m.agents.length === 0) out.push('_No agents were observed in this span._', '');
  for (const a of m.agents) {
    out.push(`## Agent ${mdEscape(a.agent)}`, '');
    const band = a.band ? `${a.band.low.toFixed(1)}–${a.band.high.toFixed(1)} (median ${a.band.median}, ${a.band.samples} periods)` : 'not armed yet';
    out.push(`- Quiet streak: ${a.quietStreak}${a.alertActive ? ' — **quiet alert active**' : ''}`);
    out.push(`- External-flow band for this hour: ${band}`, '');
    out.push(`| ${a.strip.map((c) => hhmm(c.start)).join(' | ')} |`);
    out.push(`|${a.strip.map(() => '---:').join('|')}|`);
    out.push(`| ${a.strip.map((c) => `${c.externalFlows ?? ''}${STATUS_GLYPH[c.status]}${c.alert ? '!' : ''}`).join(' | ')} |`, '');
    out.push('### First-seen destinations', '');
    if (a.firstSeen.length === 0) out.push('None.');
    for (const f of a.firstSeen) out.push(`- ${mdEscape(f.destination)} — first at ${msToRfc3339(f.firstSeenMs).slice(0, 19)}Z`);
    out.push('', '### DNS names', '', a.dnsNames.length > 0 ? a.dnsNames.map((n) => `- ${mdEscape(n)}`).join('\n') : 'None.');
    out.push('', '### TLS SNI', '', a.sniNames.length > 0 ? a.sniNames.map((n) => `- ${mdEscape(n)}`).join('\n') : 'None.');
    out.push('', '### Model providers', '', `Bytes on connections that ended in the span: ${a.bytes}`, '');
    if (a.llmProviders.length === 0) out.push('None.');
    else out.push('| provider | calls | request bytes | response bytes |', '|---|---:|---:|---:|',
      ...a.llmProviders.map((p) => `| ${mdEscape(p.provider)} | ${p.calls} | ${p.requestBytes} | ${p.responseBytes} |`));
    out.push('', '### Pulse events', '');
    if (a.events.length === 0) out.push('None.');
    for (const e of a.events) out.push(`- ${hhmm(e.windowStart ?? e.timeMs)}Z \`${e.event}\` ${mdEscape(describeEvent(e))}`);
    out.push('');
  }
  if (m.otherEvents.length > 0) {
    out.push('## Observer', '');
    for (const e of m.otherEvents) out.push(`- ${hhmm(e.windowStart ?? e.timeMs)}Z \`${e.event}\` ${mdEscape(describeEvent(e))}`);
    out.push('');
  }
  return out.join('\n');
}
