import { describe, expect, it } from 'vitest';
import { escapeControl, humanLine } from '../src/cli/format.js';
import type { Envelope } from '../src/events/envelope.js';

describe('the human TTY view cannot be steered by the agent', () => {
  it('escapes C0, DEL, C1 and bidi controls in argv, paths and comm', () => {
    expect(escapeControl('a\rb\x1b[2Kc\x7f\x9b\u202eevil\u2066')).toBe('a\\x0db\\x1b[2Kc\\x7f\\x9b\\u{202e}evil\\u{2066}');
    const env: Envelope = {
      time: '2026-12-01T00:00:00.000000000Z', event: 'process.exec',
      attributes: { 'process.pid': 1, 'process.command': 'x\x1b[1A', 'process.command_args': ['sh', '-c', 'echo\r\x1b[2Kinnocent'] },
    };
    const line = humanLine(env, true);
    const body = line.replace(/\x1b\[(\d+|90|3\d)m/g, ''); // only the view's own colour codes may remain
    expect(body).not.toMatch(/[\x00-\x1f\x7f]/);
    expect(line).toContain('echo\\x0d\\x1b[2Kinnocent');
    expect(line).toContain('x\\x1b[1A');
  });
});
