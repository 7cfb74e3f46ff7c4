import { msToRfc3339 } from './events.js';
import { describeEvent, type AgentDigest, type DigestModel, type StripCell } from './digest-model.js';

/**
 * Self-contained HTML digest: inline CSS and SVG, no scripts, no external
 * fetches — it must open the same on an air-gapped laptop. Every string from
 * the store is escaped; DNS names and SNI are chosen by whoever the agent
 * talked to.
 */
export function htmlEscape(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const CELL = 30;
const BAR_H = 70;
const TOP = 16;

function hh(ms: number): string {
  return new Date(ms).toISOString().slice(11, 13);
}

function cellSvg(c: StripCell, i: number, max: number): string {
  const x = i * CELL;
  const parts: string[] = [];
  const title = c.status === 'none' ? 'not tracked' : `${c.externalFlows} external / ${c.flows} flows${c.reasons.length ? ` — ${c.reasons.join(', ')}` : ''}`;
  parts.push(`<title>${htmlEscape(`${hh(c.start)}:00Z ${title}`)}</title>`);
  if (c.status === 'gap') parts.push(`<rect x="${x + 1}" y="${TOP}" width="${CELL - 2}" height="${BAR_H}" fill="url(#hatch)" stroke="#777"/>`);
  else if (c.status === 'degraded') parts.push(`<rect x="${x + 1}" y="${TOP}" width="${CELL - 2}" height="${BAR_H}" fill="#f6d365" opacity="0.45"/>`);
  else if (c.status === 'none') parts.push(`<rect x="${x + 1}" y="${TOP}" width="${CELL - 2}" height="${BAR_H}" fill="none" stroke="#ccc" stroke-dasharray="2,2"/>`);
  if (c.externalFlows !== null && c.externalFlows > 0) {
    const h = Math.max(2, Math.round((c.externalFlows / max) * BAR_H));
    parts.push(`<rect class="bar" x="${x + 4}" y="${TOP + BAR_H - h}" width="${CELL - 8}" height="${h}" fill="#3a6ea5"/>`);
  } else if (c.externalFlows === 0 && c.status === 'ok') {
    parts.push(`<rect x="${x + 4}" y="${TOP + BAR_H - 1}" width="${CELL - 8}" height="1" fill="#3a6ea5"/>`);
  }
  if (c.alert) parts.push(`<polygon class="alert" points="${x + CELL / 2 - 6},2 ${x + CELL / 2 + 6},2 ${x + CELL / 2},${TOP - 2}" fill="#d62828"/>`);
  if (i % 3 === 0) parts.push(`<text x="${x + 2}" y="${TOP + BAR_H + 14}" font-size="11" fill="#555">${hh(c.start)}</text>`);
  return `<g>${parts.join('')}</g>`;
}

export function rhythmStrip(a: AgentDigest): string {
  const max = Math.max(1, ...a.strip.map((c) => c.externalFlows ?? 0));
  const cellsWidth = a.strip.length * CELL;
  const width = cellsWidth + 56; // right margin holds the scale label, clear of the bars
  const height = TOP + BAR_H + 20;
  return `<svg xmlns="http://www.w3.org/2000/svg" class="strip" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="external flows per window for ${htmlEscape(a.agent)}">`
    + '<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="#eee"/><line x1="0" y1="0" x2="0" y2="6" stroke="#888" stroke-width="2"/></pattern></defs>'
    + `<line x1="0" y1="${TOP + BAR_H}" x2="${cellsWidth}" y2="${TOP + BAR_H}" stroke="#999"/>`
    + `<line x1="${cellsWidth + 2}" y1="${TOP}" x2="${cellsWidth + 6}" y2="${TOP}" stroke="#999"/>`
    + `<text x="${cellsWidth + 8}" y="${TOP + 4}" font-size="10" fill="#777">${max}</text>`
    + `<text x="${cellsWidth + 8}" y="${TOP + BAR_H}" font-size="10" fill="#777">0</text>`
    + a.strip.map((c, i) => cellSvg(c, i, max)).join('')
    + '</svg>';
}

function list(items: readonly string[]): string {
  return items.length === 0 ? '<p class="none">None.</p>' : `<ul>${items.map((i) => `<li>${htmlEscape(i)}</li>`).join('')}</ul>`;
}

function agentSection(a: AgentDigest): string {
  const band = a.band ? `${a.band.low.toFixed(1)}–${a.band.high.toFixed(1)} (median ${a.band.median}, ${a.band.samples} periods)` : 'not armed yet';
  return `<section class="agent"><h2>${htmlEscape(a.agent)}${a.alertActive ? ' <span class="badge">quiet alert</span>' : ''}</h2>
<p>Quiet streak <b>${a.quietStreak}</b> · external-flow band ${htmlEscape(band)}</p>
${rhythmStrip(a)}
<div class="cols">
<div><h3>First-seen destinations</h3>${list(a.firstSeen.map((f) => `${f.destination} — ${msToRfc3339(f.firstSeenMs).slice(11, 19)}Z`))}</div>
<div><h3>DNS names</h3>${list(a.dnsNames)}</div>
<div><h3>TLS SNI</h3>${list(a.sniNames)}</div>
<div><h3>Model providers</h3>${list(a.llmProviders.map((p) => `${p.provider}: ${p.calls} calls, ${p.requestBytes} B sent, ${p.responseBytes} B received`))}<p>${a.bytes} bytes on connections that ended</p></div>
</div>
<h3>Pulse events</h3>${list(a.events.map((e) => `${msToRfc3339(e.windowStart ?? e.timeMs).slice(11, 16)}Z ${e.event} — ${describeEvent(e)}`))}
</section>`;
}

export function renderHtml(m: DigestModel): string {
  const title = `Pulse digest ${msToRfc3339(m.windowStart).slice(0, 13)}Z`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${htmlEscape(title)}</title>
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;background:#fafafa}
h1{font-size:20px}h2{font-size:17px;margin:0 0 4px}h3{font-size:13px;margin:10px 0 2px;color:#444}
.agent{background:#fff;border:1px solid #ddd;border-radius:6px;padding:12px 16px;margin:12px 0}
.cols{display:flex;gap:24px;flex-wrap:wrap}.cols>div{min-width:220px}
ul{margin:2px 0;padding-left:18px}.none{color:#888;margin:2px 0}
.badge{background:#d62828;color:#fff;border-radius:4px;padding:1px 6px;font-size:12px}
.legend span{display:inline-block;margin-right:14px}.sw{display:inline-block;width:12px;height:12px;vertical-align:middle;margin-right:4px}
</style></head><body>
<h1>${htmlEscape(title)}</h1>
<p>Window ${htmlEscape(msToRfc3339(m.windowStart))} – ${htmlEscape(msToRfc3339(m.windowEnd))}. Strips show external flows per window over the 24 h to the window's end (UTC hours).</p>
<p class="legend"><span><i class="sw" style="background:#3a6ea5"></i>external flows</span><span><i class="sw" style="background:#bbb"></i>observer gap (hatched)</span><span><i class="sw" style="background:#f6d365"></i>degraded</span><span><i class="sw" style="background:#d62828"></i>quiet alert</span></p>
${m.agents.length === 0 ? '<p class="none">No agents were observed in this span.</p>' : m.agents.map(agentSection).join('\n')}
${m.otherEvents.length > 0 ? `<section class="agent"><h2>Observer</h2>${list(m.otherEvents.map((e) => `${msToRfc3339(e.windowStart ?? e.timeMs).slice(11, 16)}Z ${describeEvent(e)}`))}</section>` : ''}
</body></html>
`;
}
